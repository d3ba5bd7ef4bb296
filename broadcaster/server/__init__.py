"""asyncio I/O: moves bytes between sockets and the pure protocol layer."""
