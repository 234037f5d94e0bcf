"""A mail backend for tests of failed deliveries: Django's locmem backend that refuses
the next `fail_next` messages as a mail server would."""

from smtplib import SMTPServerDisconnected

from django.core.mail.backends.locmem import EmailBackend


class FlakyEmailBackend(EmailBackend):
    fail_next = 0

    def send_messages(self, messages):
        if FlakyEmailBackend.fail_next > 0:
            FlakyEmailBackend.fail_next -= 1
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)
