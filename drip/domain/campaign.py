"""Frozen, validated campaign values: what the YAML loader produces."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum

from drip.domain.enums import CampaignKind, Channel, OptOutMode, SenderRole
from drip.domain.triggers import Automation
from drip.domain.window import SendWindow
from drip.errors import ValidationError

DEFAULT_FOOTER = (
    "[This part of the message is required by your mobile carrier and is sent "
    "automatically. If you prefer not to receive text messages from me just reply end]"
)
DEFAULT_INTERVAL_DAYS = 30
#: How long a paused enrollment waits for quiet before it resumes by itself.
DEFAULT_RESUME_AFTER = timedelta(days=7)


class OnReply(StrEnum):
    """What a campaign does when the contact writes back (or the CRM logs a touch).

    ``stop`` ends the enrollment; ``pause`` holds its sends until the contact
    has been quiet for ``resume_after`` (or an operator resumes it);
    ``continue`` leaves it running. See docs/campaigns.md.
    """

    STOP = "stop"
    PAUSE = "pause"
    CONTINUE = "continue"


@dataclass(frozen=True, slots=True)
class Step:
    """One message of a campaign, ``day`` days after enrollment."""

    id: str
    position: int
    day: int
    body: str
    channel: Channel = Channel.SMS
    at: time | None = None
    subject: str | None = None
    opt_out: OptOutMode = OptOutMode.RULES
    #: A text of this step not sent within this long after it was due is skipped.
    expires_after: timedelta | None = None

    def __post_init__(self) -> None:
        if self.expires_after is not None and self.expires_after <= timedelta(0):
            raise ValidationError(f"step {self.id}: expires_after must be positive")
        if self.day < 0:
            raise ValidationError(f"step {self.id}: day must not be negative")
        if not self.body.strip():
            raise ValidationError(f"step {self.id}: body must not be empty")
        if self.channel is Channel.EMAIL and not self.subject:
            raise ValidationError(f"step {self.id}: an email step needs a subject")
        if self.channel is Channel.SMS and self.subject is not None:
            raise ValidationError(f"step {self.id}: an sms step has no subject")

    def as_dict(self) -> dict[str, object]:
        # expires_after only when set, so that stored steps without it keep their form
        extra: dict[str, object] = {}
        if self.expires_after is not None:
            extra["expires_after_seconds"] = int(self.expires_after.total_seconds())
        return extra | {
            "id": self.id,
            "position": self.position,
            "day": self.day,
            "body": self.body,
            "channel": self.channel.value,
            "at": self.at.strftime("%H:%M") if self.at else None,
            "subject": self.subject,
            "opt_out": self.opt_out.value,
        }


@dataclass(frozen=True, slots=True)
class OptOutSettings:
    interval_days: int = DEFAULT_INTERVAL_DAYS
    footer: str | None = None

    def __post_init__(self) -> None:
        if self.interval_days < 1:
            raise ValidationError("opt_out.interval_days must be at least 1")


@dataclass(frozen=True, slots=True)
class Campaign:
    """A named plan of steps; ``version`` is a hash of its normalized content."""

    name: str
    kind: CampaignKind
    steps: tuple[Step, ...]
    sender: SenderRole = SenderRole.AGENT
    stop_on_reply: bool = False
    send_window: SendWindow | None = None
    opt_out: OptOutSettings = field(default_factory=OptOutSettings)
    source: str | None = None
    #: Triggers, exits, group, priority and reenroll (lead events; see docs/campaigns.md).
    automation: Automation = field(default_factory=Automation)
    #: What a reply does; ``stop_on_reply: true`` is the older spelling of ``stop``.
    on_reply: OnReply = OnReply.CONTINUE
    resume_after: timedelta = DEFAULT_RESUME_AFTER

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationError("campaign name must not be empty")
        if self.stop_on_reply and self.on_reply is OnReply.CONTINUE:
            object.__setattr__(self, "on_reply", OnReply.STOP)
        elif self.on_reply is OnReply.STOP:
            object.__setattr__(self, "stop_on_reply", True)
        elif self.stop_on_reply:
            raise ValidationError(
                f"campaign {self.name}: stop_on_reply: true contradicts on_reply: {self.on_reply}"
            )
        if self.resume_after < timedelta(minutes=1):
            raise ValidationError(f"campaign {self.name}: resume_after must be at least 1m")
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValidationError(f"campaign {self.name}: duplicate step ids {', '.join(dupes)}")

    def as_dict(self) -> dict[str, object]:
        """Normalized content, the input of ``version`` and what the store keeps."""
        out: dict[str, object] = {
            "name": self.name,
            "kind": self.kind.value,
            "sender": self.sender.value,
            "stop_on_reply": self.stop_on_reply,
            "send_window": (
                {
                    "start": self.send_window.start.strftime("%H:%M"),
                    "end": self.send_window.end.strftime("%H:%M"),
                }
                if self.send_window
                else None
            ),
            "opt_out": {
                "interval_days": self.opt_out.interval_days,
                "footer": self.opt_out.footer,
            },
            "steps": [s.as_dict() for s in self.steps],
        }
        if not self.automation.empty:  # absent when empty: older versions keep their hash
            out["automation"] = self.automation.as_dict()
        if self.on_reply is OnReply.PAUSE:  # stop is ``stop_on_reply``; continue the default
            out["on_reply"] = self.on_reply.value
            out["resume_after_seconds"] = int(self.resume_after.total_seconds())
        return out

    @property
    def version(self) -> str:
        blob = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Campaign:
        """Rebuild from ``as_dict`` output (the stored definition)."""
        steps_raw = data["steps"]
        assert isinstance(steps_raw, list)
        steps = tuple(
            Step(
                id=str(s["id"]),
                position=int(s["position"]),
                day=int(s["day"]),
                body=str(s["body"]),
                channel=Channel(s["channel"]),
                at=time.fromisoformat(s["at"]) if s.get("at") else None,
                subject=s.get("subject"),
                opt_out=OptOutMode(s.get("opt_out", "rules")),
                expires_after=timedelta(seconds=int(s["expires_after_seconds"]))
                if s.get("expires_after_seconds")
                else None,
            )
            for s in steps_raw
        )
        window_raw = data.get("send_window")
        window = (
            SendWindow(
                time.fromisoformat(window_raw["start"]), time.fromisoformat(window_raw["end"])
            )
            if isinstance(window_raw, dict)
            else None
        )
        auto_raw = data.get("automation")
        automation = Automation.from_dict(auto_raw) if isinstance(auto_raw, dict) else Automation()
        opt_raw = data.get("opt_out") or {}
        assert isinstance(opt_raw, dict)
        return cls(
            name=str(data["name"]),
            kind=CampaignKind(str(data["kind"])),
            sender=SenderRole(str(data.get("sender", "agent"))),
            stop_on_reply=bool(data.get("stop_on_reply", False)),
            send_window=window,
            opt_out=OptOutSettings(
                interval_days=int(opt_raw.get("interval_days", DEFAULT_INTERVAL_DAYS)),
                footer=opt_raw.get("footer"),
            ),
            steps=steps,
            automation=automation,
            on_reply=OnReply(str(data.get("on_reply", OnReply.CONTINUE.value))),
            resume_after=timedelta(
                seconds=int(str(data.get("resume_after_seconds", 0)))
                or DEFAULT_RESUME_AFTER.total_seconds()
            ),
        )
