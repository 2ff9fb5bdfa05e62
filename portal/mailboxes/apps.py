from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "portal.mailboxes"
    label = "mailboxes"
