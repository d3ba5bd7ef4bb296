"""One client connection's protocol state: text frames in, actions out.

The I/O layer feeds every text frame to `PusherConnection.receive` and carries out the actions it
returns, in order. Nothing here touches a socket or reads a clock: time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broadcaster.protocol import frames
from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import (
    MAX_EVENT_NAME,
    ChannelKind,
    channel_kind,
    channel_name_problem,
    user_of_channel,
)
from broadcaster.protocol.errors import (
    ClientEventRejected,
    InvalidMessage,
    PusherError,
    SubscriptionError,
    Unauthorized,
)
from broadcaster.protocol.presence import Member, parse_channel_data
from broadcaster.protocol.rate_limit import FixedWindow
from broadcaster.protocol.signatures import channel_auth_string, verify_channel_auth
from broadcaster.protocol.users import SignedInUser, parse_signin, signin_overdue


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `text` to this connection only."""

    text: str


@dataclass(frozen=True, slots=True)
class Join:
    """Subscribe this connection to `channel` (as `member` on presence channels).

    The I/O layer asks the hub, then calls `joined` or `join_refused` with the outcome.
    """

    channel: str
    member: Member | None


@dataclass(frozen=True, slots=True)
class Leave:
    channel: str
    member: Member | None


@dataclass(frozen=True, slots=True)
class Relay:
    """Send `text` to every subscriber of `channel` except this connection.

    `lifecycle` is the `client_event` to report to the hub observer (webhooks).
    """

    channel: str
    text: str
    lifecycle: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SignIn:
    """Register this connection as `user` with the hub (after signing `previous` out, if any),
    then send `pusher:signin_success` and the watchlist's online users."""

    user: SignedInUser
    previous: SignedInUser | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Send `error` and close the socket with its code."""

    error: PusherError


Action = Reply | Join | Leave | Relay | Close | SignIn


class PusherConnection:
    """The Pusher protocol state of one WebSocket: its channels, presence identities and limits."""

    __slots__ = ("_events_in_window", "_limiter", "_window_start", "app", "channels",
                 "connected_at", "socket_id", "user")

    def __init__(self, app: App, socket_id: str, connected_at: float = 0.0) -> None:
        self.app = app
        self.socket_id = socket_id
        self.connected_at = connected_at
        # Who the socket signed in as (`pusher:signin`), if it did.
        self.user: SignedInUser | None = None
        # channel -> presence identity (None on other kinds); a channel is listed once joined.
        self.channels: dict[str, Member | None] = {}
        self._window_start = 0.0
        self._events_in_window = 0
        # Reverb's per-connection limit on every client message (rate_limiting_* options).
        self._limiter = (FixedWindow(app.rate_limit_max_attempts, app.rate_limit_decay_seconds)
                         if app.rate_limiting_enabled else None)

    def established(self) -> str:
        """The first frame the client gets: `pusher:connection_established`."""
        return frames.connection_established(self.socket_id, self.app.activity_timeout)

    def receive(self, text: str, now: float) -> list[Action]:
        """Handle one text frame; never raises for client mistakes (they become replies)."""
        if self._limiter is not None and not self._limiter.hit(now):
            error = PusherError("Rate limit exceeded", code=4301)
            return [Close(error)] if self.app.rate_limit_terminate else [Reply(error.to_frame())]
        try:
            message = frames.parse_client_message(text, self.app.max_message_size)
            return self._handle(message, now)
        except SubscriptionError as exc:
            return [Reply(exc.to_frame())]
        except PusherError as exc:
            return [Close(exc)] if exc.close else [Reply(exc.to_frame())]

    def _handle(self, message: frames.ClientMessage, now: float) -> list[Action]:
        if isinstance(message, frames.Ping):
            return [Reply(frames.PONG)]
        if isinstance(message, frames.Pong):
            return []
        if isinstance(message, frames.SignIn):
            return [self._sign_in(message)]
        if isinstance(message, frames.Subscribe):
            own = self._own_user_channel(message.channel)
            if own is not None:
                return [own]
            join = self._subscribe(message)
            current = self.channels.get(join.channel)
            if join.channel in self.channels and current != join.member:
                # The same socket subscribing again as someone else: leave as the old identity.
                del self.channels[join.channel]
                return [Leave(join.channel, current), join]
            return [join]
        if isinstance(message, frames.Unsubscribe):
            if message.channel not in self.channels:
                return []
            return [Leave(message.channel, self.channels.pop(message.channel))]
        return self._client_event(message, now)

    def _sign_in(self, message: frames.SignIn) -> SignIn:
        user = parse_signin(self.app, self.socket_id, message.auth, message.user_data)
        # Signing in again as the very same user changes nothing (registering the socket again
        # is harmless); signing out first would flash the user offline to their watchers.
        previous = self.user if self.user != user else None
        self.user = user
        return SignIn(user, previous)

    def _own_user_channel(self, channel: str) -> Reply | None:
        """Subscriptions to `#` channels: a signed-in socket may take its own user channel
        (pusher-js does so after sign-in, without auth); every other `#` name is reserved.

        Events for the user are delivered to its signed-in sockets by the hub, so the
        subscription itself is only acknowledged, not registered.
        """
        if not channel.startswith("#"):
            return None
        user_id = user_of_channel(channel)
        if user_id is not None and self.user is not None and self.user.id == user_id:
            return Reply(frames.subscription_succeeded(channel))
        raise SubscriptionError(
            channel[:200], "Only the signed-in user may subscribe to their own #server-to-user "
            "channel; other # channels are reserved", status=403, kind="Forbidden",
        )

    def signin_overdue(self, now: float) -> PusherError | None:
        """The 4009 to close with when the app requires sign-in and it did not happen in time."""
        return signin_overdue(now, self.connected_at, self.user is not None,
                              self.app.user_authentication_timeout)

    def _subscribe(self, message: frames.Subscribe) -> Join:
        channel = message.channel
        problem = channel_name_problem(channel)
        if problem:
            raise SubscriptionError(channel, problem, status=400, kind="InvalidChannel")
        kind = channel_kind(channel)
        member: Member | None = None
        if kind is ChannelKind.PRESENCE:
            member = parse_channel_data(channel, message.channel_data,
                                        self.app.max_presence_user_info_size)
        if kind.needs_auth:
            auth = message.auth or ""
            data = message.channel_data if kind is ChannelKind.PRESENCE else None
            if not verify_channel_auth(self.app.key, self.app.secret, self.socket_id, channel,
                                       auth, data):
                signed = channel_auth_string(self.socket_id, channel,
                                             "<channel_data>" if data else None)
                raise SubscriptionError(
                    channel,
                    f"Invalid signature: expected HMAC SHA256 hex digest of {signed}",
                )
        return Join(channel, member)

    def joined(self, join: Join) -> None:
        """The hub accepted `join`; client events on that channel are now allowed."""
        self.channels[join.channel] = join.member

    def _client_event(self, event: frames.ClientEvent, now: float) -> list[Action]:
        if not self.app.client_events:
            raise ClientEventRejected("Client events are not enabled for this app")
        if len(event.event) > MAX_EVENT_NAME:
            raise InvalidMessage(f"Event name is longer than {MAX_EVENT_NAME} characters")
        if not channel_kind(event.channel).allows_client_events:
            raise ClientEventRejected(
                "Client events are only allowed on private and presence channels"
            )
        if event.channel not in self.channels:
            raise Unauthorized(f"Not subscribed to channel {event.channel[:200]}")
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._events_in_window = 0
        self._events_in_window += 1
        limit = self.app.max_client_events_per_second
        if limit >= 0 and self._events_in_window > limit:
            raise ClientEventRejected(f"Client event rate limit exceeded ({limit} per second)")
        member = self.channels[event.channel]
        user_id = member.user_id if member is not None else None
        lifecycle = frames.client_event_lifecycle(event, self.socket_id, user_id)
        return [Relay(event.channel, frames.client_event_frame(event, user_id), lifecycle)]

    def leave_all(self) -> list[Leave]:
        """The connection is gone: leave every channel it was in."""
        leaves = [Leave(channel, member) for channel, member in self.channels.items()]
        self.channels.clear()
        return leaves
