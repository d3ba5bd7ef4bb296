"""ChatService: runs each reply in a background task, from the model's stream to the clients.

history → model stream → ChunkRelay (coalesce, number, publish, save) → final save →
`message.completed`. Every outcome (complete, failed, cancelled) ends with the message stored and
announced; no exception leaves a reply task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from app.config import Settings
from app.db import Database
from app.models import Conversation, Message, MessageStatus
from app.services import message_store, prompt
from app.services.events import MESSAGE_COMPLETED, MESSAGE_CREATED, message_event, private_channel
from app.services.llm import ReplyError, ReplyModel, ReplyRequest
from app.services.progress import ProgressSaver
from app.services.publisher import PusherPublisher
from app.services.relay import ChunkRelay, RelayClock
from app.shared_state import SharedState, SharedStateUnavailable

logger = logging.getLogger("app.chat")
SHUTDOWN_REASON = "The server stopped before the reply was complete."
INTERNAL_ERROR = "The reply failed because of an internal error."
# Beyond two polls: the poll's own round trip and the publish tick of a chunk under way.
RETARGET_MARGIN = 0.05
# How long a cancel waits for another process to store the reply's end.
CANCEL_WAIT_SECONDS = 5.0


class ReplySlot(Enum):
    """The answer to `ChatService.reserve`."""

    HELD = "held"
    USER_BUSY = "user_busy"
    SERVER_BUSY = "server_busy"


@dataclass(frozen=True)
class Reservation:
    """A reply slot (`slot` HELD) or why there is none; `hold` names the user's shared slot."""

    slot: ReplySlot
    user_id: int
    hold: str = ""


@dataclass
class _RunningReply:
    task: asyncio.Task[None]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str | None = None


class ChatService:
    """Starts, tracks and cancels streaming replies."""

    def __init__(
        self, db: Database, publisher: PusherPublisher, model: ReplyModel, settings: Settings,
        state: SharedState,
    ) -> None:
        self._db = db
        self._state = state
        self._watcher: asyncio.Task[None] | None = None
        self._publisher = publisher
        self._model = model
        self._settings = settings
        self._running: dict[int, _RunningReply] = {}
        self._progress = ProgressSaver(db, settings.persist_interval_ms / 1000)
        self._clock = RelayClock(settings.publish_interval_ms / 1000)
        # conversation id -> (channel token, replies running in it); read at every publish so a
        # rotated token takes effect mid-reply.
        self._tokens: dict[int, tuple[str, int]] = {}
        self._held = 0

    async def reserve(self, user_id: int) -> Reservation:
        """Hold a reply slot for the user: one of theirs (in every process) and one of this
        process's.

        `USER_BUSY` when the user has `max_replies_per_user` running anywhere, `SERVER_BUSY`
        when this process runs `max_running_replies` (beyond that, replies would only get slower
        for everyone). Held until the reply started with it ends, or `unreserve` when none
        starts. Raises `SharedStateUnavailable` (nothing held then).
        """
        if self._held >= self._settings.max_running_replies:
            return Reservation(ReplySlot.SERVER_BUSY, user_id)
        self._held += 1  # before the await: concurrent posts must see it
        try:
            hold = await self._state.hold_reply(user_id, self._settings.max_replies_per_user)
        except BaseException:
            self._held -= 1
            raise
        if hold is None:
            self._held -= 1
            return Reservation(ReplySlot.USER_BUSY, user_id)
        return Reservation(ReplySlot.HELD, user_id, hold)

    async def unreserve(self, reservation: Reservation) -> None:
        """Give back a HELD reservation no reply was started with."""
        self._held = max(0, self._held - 1)
        await self._release_hold(reservation)

    async def _release_hold(self, reservation: Reservation) -> None:
        try:
            await self._state.release_reply(reservation.user_id, reservation.hold)
        except SharedStateUnavailable as exc:
            # The hold is a lease: it lapses by itself if it cannot be given back now.
            logger.warning("could not release a reply slot of user %s: %s",
                           reservation.user_id, exc)

    @property
    def model_label(self) -> str:
        return self._model.label

    def channel(self, conversation_id: int) -> str:
        """The private channel of a conversation with a running reply, by its current token."""
        return private_channel(conversation_id, self._tokens[conversation_id][0])

    async def retarget(self, conversation_id: int, token: str) -> None:
        """Publish the running replies of a conversation under its new channel token, here at
        once and in the other processes from their next poll: with other processes, this
        returns once two polls have passed, so that what the caller publishes next (the
        member's removal) follows the last chunk sent on the old channel."""
        self._retarget_here(conversation_id, token)
        try:
            await self._state.retarget(conversation_id, token)
        except SharedStateUnavailable as exc:
            # The removal is stored already and must still be announced; a reply streaming in
            # another process keeps the old channel until it ends.
            logger.warning("could not tell the other processes about conversation %s's new "
                           "channel: %s", conversation_id, exc)
            return
        if self._state.shared:
            await asyncio.sleep(2 * self._settings.shared_poll_ms / 1000 + RETARGET_MARGIN)

    def _retarget_here(self, conversation_id: int, token: str) -> None:
        if conversation_id in self._tokens:
            self._tokens[conversation_id] = (token, self._tokens[conversation_id][1])

    def _release(self, conversation_id: int, message_id: int) -> None:
        self._running.pop(message_id, None)
        self._held = max(0, self._held - 1)
        token, count = self._tokens.get(conversation_id, ("", 1))
        if count <= 1:
            self._tokens.pop(conversation_id, None)
        else:
            self._tokens[conversation_id] = (token, count - 1)

    async def start_reply(
        self,
        conversation_id: int,
        channel_token: str,
        reservation: Reservation,
        user_message: dict[str, Any],
        placeholder: dict[str, Any],
        socket_id: str | None,
        request: ReplyRequest | None = None,
    ) -> None:
        """Announce the new turn and stream the reply into `placeholder` in a background task.

        Takes over the slot `reservation` holds; it is freed when the reply ends. `request`
        is what to ask the model, when the caller read it already (else it is read here).
        """
        message_id = int(placeholder["id"])
        try:
            # Before the 202: a cancel that another process receives next must find us.
            await self._state.streaming_here(message_id)
        except SharedStateUnavailable as exc:
            logger.warning("reply %s streams unannounced to other processes: %s",
                           message_id, exc)
        stop = asyncio.Event()
        _, count = self._tokens.get(conversation_id, (channel_token, 0))
        self._tokens[conversation_id] = (channel_token, count + 1)
        task = asyncio.create_task(
            self._reply(conversation_id, user_message, placeholder, socket_id, stop, request,
                        reservation),
            name=f"reply-{message_id}",
        )
        self._running[message_id] = _RunningReply(task, stop)
        task.add_done_callback(lambda _t: self._release(conversation_id, message_id))
        if self._state.shared and (self._watcher is None or self._watcher.done()):
            self._watcher = asyncio.create_task(self._watch(), name="reply-watcher")

    def is_running(self, message_id: int) -> bool:
        return message_id in self._running

    async def cancel(self, message_id: int, reason: str | None = None) -> bool:
        """Stop a running reply, in this process or another, and wait until it is stored;
        False if no process streams it (or the one that does never stored it in time).

        Without `reason` it ends `cancelled`; with one it ends `failed` with that reason.
        Raises `SharedStateUnavailable` when the other processes cannot be asked.
        """
        running = self._running.get(message_id)
        if running is None:
            if not await self._state.request_stop(message_id, reason):
                return False
            return await self._stored_elsewhere(message_id)
        running.stop_reason = reason
        running.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(running.task)
        return True

    async def _stored_elsewhere(self, message_id: int) -> bool:
        """Wait (bounded) until the process streaming `message_id` has stored its end."""
        poll = self._settings.shared_poll_ms / 1000
        for _ in range(int(CANCEL_WAIT_SECONDS / poll) + 1):
            await asyncio.sleep(poll)
            status = await self._db.run(lambda s: getattr(s.get(Message, message_id), "status",
                                                          None))
            if status is not MessageStatus.STREAMING:
                return True
        logger.warning("reply %s did not stop within %ss in the process streaming it",
                       message_id, CANCEL_WAIT_SECONDS)
        return False

    async def _watch(self) -> None:
        """Apply what other processes asked of the replies running here: stops and channel
        tokens. One poll per `shared_poll_ms` for all replies; ends when none runs."""
        poll = self._settings.shared_poll_ms / 1000
        while self._running:
            await asyncio.sleep(poll)
            try:
                signals = await self._state.watch(list(self._running), list(self._tokens))
            except SharedStateUnavailable as exc:
                logger.warning("cannot poll the shared state: %s", exc)
                await asyncio.sleep(1.0)  # the Redis client times out fast; do not spin on it
                continue
            for message_id, reason in signals.stops.items():
                running = self._running.get(message_id)
                if running is not None and not running.stop.is_set():
                    running.stop_reason = reason
                    running.stop.set()
            for conversation_id, token in signals.tokens.items():
                self._retarget_here(conversation_id, token)

    async def shutdown(self, grace_seconds: float = 5.0) -> None:
        """End every running reply as failed (stored and announced), waiting at most the grace."""
        replies = list(self._running.values())
        for running in replies:
            running.stop_reason = SHUTDOWN_REASON
            running.stop.set()
        if replies:
            await asyncio.wait([r.task for r in replies], timeout=grace_seconds)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._progress.aclose()
        await self._clock.aclose()
        await self._model.aclose()

    async def _reply(
        self,
        conversation_id: int,
        user_message: dict[str, Any],
        placeholder: dict[str, Any],
        socket_id: str | None,
        stop: asyncio.Event,
        request: ReplyRequest | None,
        reservation: Reservation,
    ) -> None:
        message_id = int(placeholder["id"])
        try:
            await self._relay_reply(conversation_id, user_message, placeholder, socket_id, stop,
                                    request)
        finally:
            await self._release_hold(reservation)
            try:
                await self._state.stream_ended(message_id)
            except SharedStateUnavailable as exc:
                logger.warning("could not note the end of reply %s: %s", message_id, exc)

    async def _relay_reply(
        self,
        conversation_id: int,
        user_message: dict[str, Any],
        placeholder: dict[str, Any],
        socket_id: str | None,
        stop: asyncio.Event,
        request: ReplyRequest | None,
    ) -> None:
        message_id = int(placeholder["id"])
        limit = self._settings.broadcast_max_data_bytes
        relay: ChunkRelay | None = None
        try:
            # Queued in this order, so they share a batch and arrive in this order.
            await asyncio.gather(*(
                self._publisher.trigger([self.channel(conversation_id)], MESSAGE_CREATED,
                                        message_event(message, limit), socket_id)
                for message in (user_message, placeholder)
            ))
            relay = ChunkRelay(
                message_id=message_id,
                channel=lambda: self.channel(conversation_id),
                publisher=self._publisher,
                clock=self._clock,
                save_progress=lambda content, seq: self._progress.note(message_id, content, seq),
                save_interval_seconds=self._settings.persist_interval_ms / 1000,
            )
            status, error = await self._stream(conversation_id, message_id, relay, stop, request)
            content, seq = await relay.close()
        except Exception:
            logger.exception("reply %s failed unexpectedly", message_id)
            status, error = MessageStatus.FAILED, INTERNAL_ERROR
            if relay is not None:
                relay.abandon()
            content, seq = (relay.content, relay.seq) if relay else ("", 0)
        await self._finish(conversation_id, message_id, status, error, content, seq)

    async def _stream(
        self, conversation_id: int, message_id: int, relay: ChunkRelay, stop: asyncio.Event,
        request: ReplyRequest | None,
    ) -> tuple[MessageStatus, str | None]:
        def load(session: Any) -> Any:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                return None
            return prompt.reply_request(
                session, conversation, message_id, self._settings.max_tokens
            )

        if request is None:
            request = await self._db.run(load)
        if request is None:
            return MessageStatus.FAILED, "The conversation was deleted."

        async def consume() -> None:
            async for delta in self._model.stream(request):
                relay.feed(delta)

        reader = asyncio.create_task(consume())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        if reader.cancelled():
            running = self._running.get(message_id)
            reason = running.stop_reason if running else None
            return (MessageStatus.FAILED, reason) if reason else (MessageStatus.CANCELLED, None)
        failure = reader.exception()
        if failure is None:
            return MessageStatus.COMPLETE, None
        if isinstance(failure, ReplyError):
            logger.warning("reply %s failed: %s", message_id, failure)
            return MessageStatus.FAILED, str(failure)
        logger.error("reply %s failed unexpectedly", message_id, exc_info=failure)
        return MessageStatus.FAILED, INTERNAL_ERROR

    async def _finish(
        self, conversation_id: int, message_id: int, status: MessageStatus, error: str | None,
        content: str, seq: int,
    ) -> None:
        try:
            final = await self._db.run(
                lambda s: message_store.finish_message(
                    s, message_id, status=status, content=content, seq=seq, error=error
                )
            )
        except Exception:
            logger.exception("could not store the end of reply %s", message_id)
            return
        if final is not None:
            await self._publisher.trigger(
                [self.channel(conversation_id)],
                MESSAGE_COMPLETED,
                message_event(final, self._settings.broadcast_max_data_bytes),
            )
