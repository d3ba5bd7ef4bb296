"""`python -m broadcaster` runs the command line."""

from broadcaster.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
