"""Text messages to customers, through a backend chosen by settings.OMS_SMS_BACKEND.

Like Django's mail backends: the sandbox ones ship here (`ConsoleSmsBackend` logs and prints,
`FileSmsBackend` writes one file per message in settings.OMS_SMS_DIR); a provider's backend
subclasses `BaseSmsBackend` and raises on any failure, so the notification is retried.
"""

import dataclasses
import datetime
import logging
import sys
import uuid
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    sender: str = ""


class SmsError(Exception):
    """The message was not accepted: the caller retries it later."""


class BaseSmsBackend:
    def send(self, message: SmsMessage) -> str:
        """Send one message; return the provider's (or the sandbox's) id. Raise on failure."""
        raise NotImplementedError

    @staticmethod
    def check(message: SmsMessage) -> None:
        if not message.to or not message.body.strip():
            raise SmsError("A text message needs a recipient and a body.")


class ConsoleSmsBackend(BaseSmsBackend):
    """Development: the message is logged and written to standard output."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def send(self, message: SmsMessage) -> str:
        self.check(message)
        message_id = uuid.uuid4().hex
        logger.info("sms (console)", extra={"sms_id": message_id, "to": message.to, "length": len(message.body)})
        self.stream.write(f"SMS {message_id} from {message.sender or '-'} to {message.to}\n{message.body}\n\n")
        self.stream.flush()
        return message_id


class FileSmsBackend(BaseSmsBackend):
    """The sandbox: one text file per message in `directory` (settings.OMS_SMS_DIR)."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory or settings.OMS_SMS_DIR)

    def send(self, message: SmsMessage) -> str:
        self.check(message)
        self.directory.mkdir(parents=True, exist_ok=True)
        now = timezone.now()
        message_id = f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}"
        path = self.directory / f"{message_id}.txt"
        path.write_text(
            f"From: {message.sender}\nTo: {message.to}\nDate: {now.astimezone(datetime.UTC).isoformat()}\n\n"
            f"{message.body}\n",
            encoding="utf-8",
        )
        logger.info("sms (file)", extra={"sms_id": message_id, "to": message.to, "path": str(path)})
        return message_id


def get_sms_backend(path: str | None = None) -> BaseSmsBackend:
    return import_string(path or settings.OMS_SMS_BACKEND)()


def sms_send(*, to: str, body: str) -> str:
    """Send one text message through the configured backend; returns its id, raises on failure."""
    return get_sms_backend().send(SmsMessage(to=to, body=body, sender=settings.OMS_SMS_FROM))
