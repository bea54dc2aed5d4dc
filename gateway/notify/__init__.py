"""Alarm notifications: WeCom, DingTalk, Feishu, webhook and e-mail channels behind a durable outbox."""
