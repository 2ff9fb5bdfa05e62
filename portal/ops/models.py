from __future__ import annotations

from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    """Written by the worker's every-minute jobs; /healthz reads its age to see workers are alive."""

    name = models.CharField(max_length=50, unique=True)
    at = models.DateTimeField(default=timezone.now)
    by = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, name: str, by: str = "") -> None:
        cls.objects.update_or_create(name=name, defaults={"at": timezone.now(), "by": by[:200]})
