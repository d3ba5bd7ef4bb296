"""A real pusher-js client (bare or inside Laravel Echo), driven through js/client_driver.mjs."""

from __future__ import annotations

from typing import Any, Literal

from tests.interop.node_process import DEFAULT_WAIT, JsonObject, NodeProcess
from tests.support.processes import Broadcaster

Library = Literal["pusher-js", "laravel-echo"]
EchoChannelType = Literal["public", "private", "presence"]


class JsClient:
    """One pusher-js connection to the broadcaster, observed line by line.

    `mark()` returns a cursor; the `wait_*` methods accept it as `start` to look only at what
    arrived afterwards.
    """

    def __init__(
        self,
        server: Broadcaster,
        library: Library = "pusher-js",
        auth_endpoint: str | None = None,
        user: tuple[str, str] | None = None,
        user_auth_endpoint: str | None = None,
        watchlist: list[str] | None = None,
        **options: Any,
    ) -> None:
        config: JsonObject = {
            "library": library,
            "key": server.key,
            "wsHost": server.host,
            "wsPort": server.port,
            **options,
        }
        if auth_endpoint is not None:
            config["authEndpoint"] = auth_endpoint
        if user is not None:
            config["authHeaders"] = {"X-User-Id": user[0], "X-User-Name": user[1]}
            if watchlist is not None:
                config["authHeaders"]["X-User-Watchlist"] = ",".join(watchlist)
        if user_auth_endpoint is not None:
            config["userAuthEndpoint"] = user_auth_endpoint
        self.library = library
        self.process = NodeProcess("client_driver.mjs", config)

    def start(self) -> JsClient:
        self.process.start()
        self.process.wait_for(lambda line: line.get("kind") == "ready", "ready line")
        return self

    def stop(self) -> None:
        self.process.stop()

    def mark(self) -> int:
        return len(self.process.lines)

    def wait_connected(self, timeout: float = DEFAULT_WAIT) -> str:
        """Wait for the `connected` state and return the socket_id pusher-js was given."""
        line = self.process.wait_for(
            lambda line: line.get("kind") == "state" and line.get("current") == "connected",
            "connected state",
            timeout,
        )
        return str(line["socket_id"])

    # pusher-js

    def subscribe(self, channel: str) -> None:
        self.process.command("subscribe", channel=channel)

    def unsubscribe(self, channel: str) -> None:
        self.process.command("unsubscribe", channel=channel)

    def wait_event(
        self, channel: str, event: str, start: int = 0, timeout: float = DEFAULT_WAIT
    ) -> JsonObject:
        """Wait until pusher-js hands `event` on `channel` to the app; return its line."""
        return self.process.wait_for(
            lambda line: (
                line.get("kind") == "event"
                and line.get("channel") == channel
                and line.get("event") == event
            ),
            f"{event!r} on {channel!r}",
            timeout,
            start,
        )

    def subscribed(self, channel: str, timeout: float = DEFAULT_WAIT) -> Any:
        """Subscribe and return the `pusher:subscription_succeeded` data (members on presence)."""
        start = self.mark()
        self.subscribe(channel)
        return self.wait_event(channel, "pusher:subscription_succeeded", start, timeout)["data"]

    def events(self, channel: str, event: str) -> list[JsonObject]:
        return self.process.matching(
            lambda line: (
                line.get("kind") == "event"
                and line.get("channel") == channel
                and line.get("event") == event
            )
        )

    def frames(self, event: str) -> list[JsonObject]:
        """Every received frame named `event`, as pusher-js decoded it."""
        return [
            line["frame"]
            for line in self.process.matching(
                lambda line: line.get("kind") == "frame" and line["frame"].get("event") == event
            )
        ]

    def wait_frame(self, event: str, start: int = 0, timeout: float = DEFAULT_WAIT) -> JsonObject:
        """Wait for a received frame named `event` and return it as pusher-js decoded it."""
        line = self.process.wait_for(
            lambda line: line.get("kind") == "frame" and line["frame"].get("event") == event,
            f"{event!r} frame",
            timeout,
            start,
        )
        frame: JsonObject = line["frame"]
        return frame

    def sent(self, event: str) -> list[JsonObject]:
        """Every frame named `event` that pusher-js sent."""
        return [
            line["frame"]
            for line in self.process.matching(
                lambda line: line.get("kind") == "sent" and line["frame"].get("event") == event
            )
        ]

    def states(self) -> list[str]:
        return [
            str(line["current"])
            for line in self.process.matching(lambda line: line.get("kind") == "state")
        ]

    def trigger(self, channel: str, event: str, data: Any) -> bool:
        """Send a client event; pusher-js returns False when it refused to send it."""
        return bool(self.process.command("trigger", channel=channel, event=event, data=data))

    def members(self, channel: str) -> JsonObject:
        result: JsonObject = self.process.command("members", channel=channel)
        return result

    def state(self) -> JsonObject:
        result: JsonObject = self.process.command("state")
        return result

    def disconnect(self) -> None:
        self.process.command("disconnect")

    # users (pusher.signin(), pusher.user)

    def signin(self, timeout: float = DEFAULT_WAIT) -> JsonObject:
        """Sign in through the user authentication endpoint; return the signin_success frame."""
        start = self.mark()
        self.process.command("signin")
        return self.wait_frame("pusher:signin_success", start, timeout)

    def bind_user(self, event: str) -> None:
        """Report every `event` sent to this user (pusher.user.bind)."""
        self.process.command("user_bind", event=event)

    def wait_user_event(self, event: str, start: int = 0,
                        timeout: float = DEFAULT_WAIT) -> JsonObject:
        return self.process.wait_for(
            lambda line: line.get("kind") == "user_event" and line.get("event") == event,
            f"user event {event!r}", timeout, start,
        )

    def user_events(self, event: str) -> list[JsonObject]:
        return self.process.matching(
            lambda line: line.get("kind") == "user_event" and line.get("event") == event
        )

    def bind_watchlist(self, name: str) -> None:
        """Report pusher.user.watchlist `online` / `offline` callbacks."""
        self.process.command("watchlist_bind", name=name)

    def wait_watchlist(self, name: str, user_ids: list[str], start: int = 0,
                       timeout: float = DEFAULT_WAIT) -> JsonObject:
        """Wait for a watchlist `name` callback naming exactly `user_ids`."""
        return self.process.wait_for(
            lambda line: (
                line.get("kind") == "watchlist"
                and line.get("name") == name
                and line["event"].get("user_ids") == user_ids
            ),
            f"watchlist {name} {user_ids}", timeout, start,
        )

    # laravel-echo

    def echo_watch(self, channel_type: EchoChannelType, name: str, **callbacks: Any) -> str:
        """Open an Echo channel and attach callbacks; return the full pusher channel name.

        `callbacks` may hold listen=[events], whispers=[names], and here/joining/leaving/
        error/subscribed=True.
        """
        return str(self.process.command("echo_watch", type=channel_type, name=name, **callbacks))

    def wait_echo(
        self,
        callback: str,
        channel: str,
        name: str | None = None,
        start: int = 0,
        timeout: float = DEFAULT_WAIT,
    ) -> JsonObject:
        """Wait until Echo calls `callback` (listen/whisper/here/...) for `channel`; return it."""
        return self.process.wait_for(
            lambda line: (
                line.get("kind") == "echo"
                and line.get("callback") == callback
                and line.get("channel") == channel
                and (name is None or line.get("name") == name)
            ),
            f"Echo {callback} callback {name or ''} on {channel!r}",
            timeout,
            start,
        )

    def echo_calls(self, callback: str, channel: str) -> list[JsonObject]:
        return self.process.matching(
            lambda line: (
                line.get("kind") == "echo"
                and line.get("callback") == callback
                and line.get("channel") == channel
            )
        )

    def whisper(self, channel_type: EchoChannelType, name: str, event: str, data: Any) -> None:
        self.process.command("echo_whisper", type=channel_type, name=name, event=event, data=data)

    def leave(self, name: str) -> None:
        self.process.command("echo_leave", name=name)

    def echo_socket_id(self) -> str | None:
        result = self.process.command("echo_socket_id")
        return None if result is None else str(result)

    def transcript(self) -> str:
        return self.process.transcript()
