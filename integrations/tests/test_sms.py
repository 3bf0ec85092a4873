"""The SMS adapter: a backend chosen by settings, sandboxes that print or write one file per message."""

import io

import pytest

from integrations.adapters.sms import (
    ConsoleSmsBackend,
    FileSmsBackend,
    SmsError,
    SmsMessage,
    get_sms_backend,
    sms_send,
)


def test_the_file_backend_writes_one_file_per_message(tmp_path):
    backend = FileSmsBackend(tmp_path / "sms")

    first = backend.send(SmsMessage(to="+33612345678", body="Your parcel is on its way", sender="Shop"))
    second = backend.send(SmsMessage(to="+33700112233", body="Ready for pickup"))

    files = sorted((tmp_path / "sms").glob("*.txt"))
    assert len(files) == 2 and first != second
    texts = {path.stem: path.read_text() for path in files}
    assert texts[first].startswith("From: Shop\nTo: +33612345678\nDate: ")
    assert texts[first].endswith("\n\nYour parcel is on its way\n")
    assert "To: +33700112233" in texts[second] and "Ready for pickup" in texts[second]


def test_the_console_backend_prints_the_message():
    stream = io.StringIO()

    message_id = ConsoleSmsBackend(stream=stream).send(SmsMessage(to="+33612345678", body="Hello", sender="Shop"))

    assert stream.getvalue() == f"SMS {message_id} from Shop to +33612345678\nHello\n\n"


@pytest.mark.parametrize("message", [SmsMessage(to="", body="Hi"), SmsMessage(to="+33612345678", body="  ")])
def test_a_message_without_recipient_or_text_is_refused(tmp_path, message):
    with pytest.raises(SmsError):
        FileSmsBackend(tmp_path).send(message)
    assert list(tmp_path.iterdir()) == []


def test_the_backend_comes_from_the_settings(settings, tmp_path):
    settings.OMS_SMS_BACKEND = "integrations.adapters.sms.FileSmsBackend"
    settings.OMS_SMS_DIR = tmp_path / "outbox"
    settings.OMS_SMS_FROM = "OMS"
    assert isinstance(get_sms_backend(), FileSmsBackend)

    message_id = sms_send(to="+33612345678", body="Hi")

    assert (tmp_path / "outbox" / f"{message_id}.txt").read_text().startswith("From: OMS\nTo: +33612345678\n")
    settings.OMS_SMS_BACKEND = "integrations.adapters.sms.ConsoleSmsBackend"
    assert isinstance(get_sms_backend(), ConsoleSmsBackend)
