"""Contacts and agents: ``drip agents [add|deactivate]``, ``drip contacts add|import|list|opt-out|status``.

``drip contacts import`` exit codes: 0 when at least one row was imported,
even with bad rows (they are listed with their line numbers, fix them and
import the file again: rows already imported are updated, never duplicated),
or when the file has no data rows; 1 when the file has rows and none could be
imported; 2 when the file itself cannot be used (unreadable, not UTF-8,
header without ``first_name`` or without ``phone``/``email``).
"""

from __future__ import annotations

from pathlib import Path

import click
from click.exceptions import Exit

from drip.cli._common import (
    AS_OPTION,
    actor_name,
    check_format,
    contact_filters,
    echo_csv,
    echo_json,
    fail,
    progress,
    ready_deps,
)


class AgentsGroup(click.Group):
    """``drip agents FIRST LAST PHONE`` adds an agent, as it always did; ``drip agents
    COMMAND ...`` runs a subcommand. Arguments that do not start with a subcommand's
    name (or an option) are those of ``add``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["add", *args]
        return super().parse_args(ctx, args)


@click.group("agents", cls=AgentsGroup, no_args_is_help=True)
def agents() -> None:
    """Add agents (drip agents FIRST LAST PHONE) and deactivate them."""


@agents.command("add")
@click.argument("first_name", help="Agent first name.")
@click.argument("last_name", help="Agent last name.")
@click.argument("phone", help="The number the agent texts from.")
@click.option("--email", help="Where the agent gets forwarded replies (reply_forwarding: email).")
def agents_add(first_name: str, last_name: str, phone: str, email: str | None) -> None:
    """Add (or rename) an agent who texts from PHONE (also: drip agents FIRST LAST PHONE)."""
    from drip.services.contacts import add_agent

    deps = ready_deps()
    agent_id = add_agent(deps, first_name, last_name, phone, deps.clock.now(), email=email)
    click.echo(f"agent {agent_id}: {first_name} {last_name}")


@agents.command("deactivate")
@click.argument("agent", help="The leaving agent: phone or id.")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="AGENT|round-robin|concierge",
    help="Who takes the contacts: one agent (phone or id), the other active agents in "
    "turn, or the concierge.",
)
def agents_deactivate(agent: str, to: str) -> None:
    """Move every contact of AGENT in one operation, then stop AGENT's number sending.

    Each contact's move is recorded (drip history shows it); pending texts go
    from the new sender; texts to the old number are still handled (a STOP is
    honoured), and any reply goes from the contact's new sender.
    """
    from drip.errors import DripError
    from drip.services.assignment import SPREADS_AND_CONCIERGE, deactivate

    deps = ready_deps()
    try:
        who = _agent_ref(agent)
        target = to if to in SPREADS_AND_CONCIERGE else _agent_ref(to)
        result = deactivate(deps, who, target, deps.clock.now(), why="operator")
    except DripError as exc:
        raise fail(str(exc)) from exc
    click.echo(result.message)


def _agent_ref(ref: str) -> str:
    """An agent's id as given, or its phone in E.164."""
    from drip.domain.zones import normalize_phone

    return ref if ref.isdigit() else normalize_phone(ref)


@click.group("contacts", no_args_is_help=True)
def contacts() -> None:
    """Create, import and find contacts."""


@contacts.command("add")
@click.option("--first-name", "-f", required=True, help="First name.")
@click.option("--phone", help="Mobile number (any US format).")
@click.option("--last-name", "-l", default="", help="Last name.")
@click.option("--email", help="Email address.")
@click.option("--state", help="Address state, e.g. FL.")
@click.option("--timezone", help="IANA zone, e.g. America/Chicago.")
@click.option("--agent", help="Phone of the assigned agent.")
@click.option("--sms-consent", is_flag=True, help="The contact agreed to texts (evidence needed).")
@click.option(
    "--consent-source",
    default="manual",
    show_default=True,
    help="registration | import | api | manual",
)
@click.option("--consent-text", help="The consent wording the contact agreed to.")
def contacts_add(
    first_name: str,
    phone: str | None,
    last_name: str,
    email: str | None,
    state: str | None,
    timezone: str | None,
    agent: str | None,
    sms_consent: bool,
    consent_source: str,
    consent_text: str | None,
) -> None:
    """Create a contact; with --sms-consent, record the evidence and send the opt-in confirmation."""
    from drip.domain.enums import ConsentSource
    from drip.services.consent import ConsentEvidence
    from drip.services.contacts import ContactInput, add_contact

    deps = ready_deps()
    now = deps.clock.now()
    source = ConsentSource(consent_source)
    consent = None
    if sms_consent:
        if not consent_text:
            raise fail("--sms-consent needs --consent-text: the words the contact agreed to")
        consent = ConsentEvidence(now, source, consent_text)
    data = ContactInput(first_name, last_name, phone, email, state, timezone, agent, source)
    result = add_contact(deps, data, consent, now)
    verb = "created" if result.created else "updated"
    click.echo(
        f"contact {result.contact_id} {verb}; sms consent: {'yes' if result.consent_in_force else 'no'}"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.confirmation is not None:
        click.echo(
            f"opt-in confirmation: {result.confirmation.outcome} ({result.confirmation.reason})"
        )


@contacts.command("import")
@click.argument(
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE.csv",
    help="CSV with a header line.",
)
@click.option(
    "--enroll", metavar="CAMPAIGN", help="Also enroll every imported contact in CAMPAIGN."
)
def import_contacts(file: Path, enroll: str | None) -> None:
    """Import contacts from a CSV file, with consent evidence where the file has it.

    Columns: first_name,last_name,phone,email,state,timezone,agent_phone,
    sms_consent,consent_at,consent_source,consent_text. Rows without complete
    evidence (sms_consent yes, consent_at and consent_text) are imported but
    cannot be texted. A phone number already known updates that contact.
    Bad rows are listed with their line number; the good rows are kept.
    """
    from drip.services.importing import (
        ImportFileError,
        exit_code,
        import_rows,
        read_csv,
        send_confirmations,
    )

    try:
        rows, notes = read_csv(file)
    except ImportFileError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        raise Exit(2) from exc
    deps = ready_deps()
    now = deps.clock.now()
    if enroll is not None:
        from drip.services.selection import check_enrollable

        check_enrollable(deps, enroll)
    for note in notes:
        click.echo(f"note: {note}")
    with progress(f"importing {file.name}", len(rows)) as advance:
        report = import_rows(deps, rows, now, on_row=lambda: advance(1))
    for bad in report.bad_rows:
        click.secho(f"{file}:{bad.describe()}", fg="red", err=True)
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(report.summary())
    if report.to_confirm:
        # After the import committed: one held opt-in confirmation per newly consented contact.
        scheduled = send_confirmations(deps, report.to_confirm, now)
        click.echo(
            f"opt-in confirmations: {len(scheduled.scheduled)} scheduled; they go out through "
            "dispatch inside each contact's send window, at the senders' pace"
        )
    if enroll is not None and report.contact_ids:
        from drip.services.enrollment import enroll_many

        ids = list(dict.fromkeys(report.contact_ids))
        sends = enroll_many(deps, ids, enroll, now)
        click.echo(
            f"enrolled the imported contacts in {enroll} (those already active left as they "
            f"were): {sends} sends scheduled"
        )
    raise Exit(exit_code(report))


@contacts.command("list")
@click.option("--state", help="Only contacts in this state (address, else area code).")
@click.option("--source", help="registration | import | api | manual")
@click.option("--agent", help="Only contacts of this agent (phone).")
@click.option("--name", help="Only names containing this (any case).")
@click.option("--stage", help="Only contacts in this CRM stage (set by lead events).")
@click.option("--tag", help="Only contacts with this CRM tag.")
@click.option(
    "--textable/--not-textable", default=None, help="Only contacts that may (not) be texted."
)
@click.option("--not-enrolled", is_flag=True, help="Only contacts active in no campaign.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="At most this many (a page).",
)
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    help="Only ids above this one: the next page starts after the last.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (shape in docs/operations.md#json-output)."
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
def contacts_list(
    state: str | None,
    source: str | None,
    agent: str | None,
    name: str | None,
    stage: str | None,
    tag: str | None,
    textable: bool | None,
    not_enrolled: bool,
    limit: int,
    after: int,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Find contacts: id, name, phone, state, sms consent, text status, active campaigns.

    A page at a time, in id order: --limit of them (100), after --after.
    """
    from drip.services.selection import list_contacts

    check_format(as_json, as_csv)
    filters = contact_filters(
        state=state,
        source=source,
        agent=agent,
        name=name,
        textable=textable,
        not_enrolled=not_enrolled,
        stage=stage,
        tag=tag,
    )
    deps = ready_deps()
    screen = not (as_json or as_csv)
    page = list_contacts(deps, filters, limit=limit, after=after, count=screen)
    rows = [c.as_dict() for c in page.contacts]
    if as_json:
        echo_json(rows)
        return
    if as_csv:
        for row in rows:
            row["campaigns"] = ";".join(row["campaigns"])  # type: ignore[arg-type]
        echo_csv(rows)
        return
    if not rows:
        click.echo("no contacts match" + (f" after id {after}" if after else ""))
        return
    click.echo(
        f"{'id':>6}  {'name':<24} {'phone':<13} {'st':<2} {'sms':<10} {'status':<16} campaigns"
    )
    for c in page.contacts:
        who = f"{c.first_name} {c.last_name}".strip()[:24]
        click.echo(
            f"{c.id:>6}  {who:<24} {c.phone or '-':<13} {c.state or '-':<2} {c.sms:<10} "
            f"{c.text_status:<16} {', '.join(c.campaigns) or '-'}"
        )
    line = f"{page.total} contact(s) match"
    if page.next_after is not None:
        line += f"; next page: --after {page.next_after}"
    click.echo(line)


@contacts.command("opt-out")
@click.argument("contact", help="Contact id or phone number.")
@click.option("--how", required=True, help='How the contact asked, e.g. "phone call", "in person".')
@click.option("--by", "by", metavar="NAME", help="Who took the request (same as --as).")
@AS_OPTION
def contacts_opt_out(contact: str, how: str, by: str | None, as_name: str | None) -> None:
    """Record an opt-out taken by phone or in person: no more texts from any sender."""
    from drip.errors import DripError
    from drip.services.contacts import find_contact
    from drip.services.operator_actions import Actor, opt_out

    deps = ready_deps()
    found = find_contact(deps, contact)
    who = Actor(actor_name(as_name or by), "cli")
    try:
        click.echo(opt_out(deps, who, found.id, how, deps.clock.now()))
    except DripError as exc:
        raise fail(str(exc)) from exc


@contacts.command("status")
@click.argument("contact", help="Contact id or phone number.")
@click.argument("status", help="cannot_be_texted | textable")
@click.option("--by", "by", metavar="NAME", help="Who decided (same as --as).")
@AS_OPTION
def contacts_status(contact: str, status: str, by: str | None, as_name: str | None) -> None:
    """Set the operator's text status: cannot_be_texted (a revocation) or textable again."""
    from drip.domain.enums import TextStatus
    from drip.services.contacts import find_contact
    from drip.services.operator_actions import Actor, set_text_status

    if status not in (TextStatus.CANNOT_BE_TEXTED.value, TextStatus.TEXTABLE.value):
        raise fail(f"STATUS: {status!r}; expected cannot_be_texted or textable", 2)
    deps = ready_deps()
    found = find_contact(deps, contact)
    who = Actor(actor_name(as_name or by), "cli")
    click.echo(set_text_status(deps, who, found.id, status, deps.clock.now()))


@contacts.command("assign")
@click.argument("contact")
@click.argument("agent")
@AS_OPTION
def contacts_assign(contact: str, agent: str, as_name: str | None) -> None:
    """Give CONTACT (CRM id, phone or id) to AGENT (phone, id, or concierge); pending texts follow."""
    from drip.errors import DripError
    from drip.services.contacts import find_contact
    from drip.services.operator_actions import Actor, assign
    from drip.store.events import contact_by_ref

    deps = ready_deps()
    try:
        with deps.sessions() as session:
            by_crm = contact_by_ref(session, contact, None, None)
            contact_id = by_crm.id if by_crm is not None else None
        if contact_id is None:
            contact_id = find_contact(deps, contact).id
        who = Actor(actor_name(as_name), "cli")
        message = assign(deps, who, contact_id, agent, deps.clock.now())
    except DripError as exc:
        raise fail(str(exc)) from exc
    click.echo(message)


@contacts.command("erase")
@click.argument("contact", help="Contact id, CRM id or phone number.")
@click.option("--yes", is_flag=True, help="Do not ask (required when stdin is not a terminal).")
@AS_OPTION
def contacts_erase(contact: str, yes: bool, as_name: str | None) -> None:
    """Forget a contact who asked to be forgotten; keep their opt-out as a keyed hash.

    Removes the name, phone, email, message bodies and free-text evidence from
    every table and from this machine's outbox file and webhook spool; keeps
    the consent events and decisions without personal data, who erased it and
    when. A contact created later with the same number or email starts opted
    out when this one had opted out. Cannot be undone (docs/compliance.md).
    """
    import sys

    from drip.errors import DripError
    from drip.logging import mask_text
    from drip.services.contacts import find_contact
    from drip.services.erasure import erase_contact

    deps = ready_deps()
    try:
        found = find_contact(deps, contact)
    except DripError as exc:
        raise fail(str(exc)) from exc
    if found.erased_at is None and not yes:
        if not sys.stdin.isatty():
            raise fail(f"not a terminal: add --yes to erase contact {found.id}", 2)
        who = f"{found.first_name} {found.last_name}".strip()
        where = mask_text(found.phone or found.email or "")
        if not click.confirm(
            f"Erase contact {found.id} ({who}, {where})? This cannot be undone", default=False
        ):
            raise fail("cancelled: nothing changed", 1)
    try:
        result = erase_contact(deps, found.id, deps.clock.now(), by=actor_name(as_name))
    except DripError as exc:
        raise fail(str(exc)) from exc
    click.echo(result.message)
