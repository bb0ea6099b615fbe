"""Contacts and agents: ``drip agents``, ``drip contacts add|import|list|opt-out|status``.

``drip contacts import`` exit codes: 0 when at least one row was imported,
even with bad rows (they are listed with their line numbers, fix them and
import the file again: rows already imported are updated, never duplicated),
or when the file has no data rows; 1 when the file has rows and none could be
imported; 2 when the file itself cannot be used (unreadable, not UTF-8,
header without ``first_name`` or without ``phone``/``email``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from drip.cli import framework as cli
from drip.cli._common import (
    check_format,
    contact_filters,
    echo_csv,
    echo_json,
    fail,
    progress,
    ready_deps,
)


def register(app: cli.App) -> None:
    """Add ``agents`` and the ``contacts`` group to ``app``."""
    app.command("agents")(agents_add)
    contacts_app = cli.App(help="Create, import and find contacts.", no_args_is_help=True)
    contacts_app.command("add")(contacts_add)
    contacts_app.command("import")(import_contacts)
    contacts_app.command("list")(contacts_list)
    contacts_app.command("opt-out")(contacts_opt_out)
    contacts_app.command("status")(contacts_status)
    app.add_group(contacts_app, name="contacts")


def agents_add(
    first_name: Annotated[str, cli.Argument(help="Agent first name.")],
    last_name: Annotated[str, cli.Argument(help="Agent last name.")],
    phone: Annotated[str, cli.Argument(help="The number the agent texts from.")],
) -> None:
    """Add (or rename) an agent who texts from PHONE."""
    from drip.services.contacts import add_agent

    deps = ready_deps()
    agent_id = add_agent(deps, first_name, last_name, phone, deps.clock.now())
    cli.echo(f"agent {agent_id}: {first_name} {last_name}")


def contacts_add(
    first_name: Annotated[str, cli.Option("--first-name", "-f", help="First name.")],
    phone: Annotated[str | None, cli.Option(help="Mobile number (any US format).")] = None,
    last_name: Annotated[str, cli.Option("--last-name", "-l", help="Last name.")] = "",
    email: Annotated[str | None, cli.Option(help="Email address.")] = None,
    state: Annotated[str | None, cli.Option(help="Address state, e.g. FL.")] = None,
    timezone: Annotated[str | None, cli.Option(help="IANA zone, e.g. America/Chicago.")] = None,
    agent: Annotated[str | None, cli.Option(help="Phone of the assigned agent.")] = None,
    sms_consent: Annotated[
        bool, cli.Option("--sms-consent", help="The contact agreed to texts (evidence needed).")
    ] = False,
    consent_source: Annotated[
        str, cli.Option(help="registration | import | api | manual")
    ] = "manual",
    consent_text: Annotated[
        str | None, cli.Option(help="The consent wording the contact agreed to.")
    ] = None,
) -> None:
    """Create a contact; with --sms-consent, record the evidence and send the opt-in confirmation."""
    from drip.domain.enums import ConsentSource
    from drip.services.contacts import ConsentEvidence, ContactInput, add_contact

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
    cli.echo(
        f"contact {result.contact_id} {verb}; sms consent: {'yes' if result.consent_in_force else 'no'}"
    )
    for note in result.notes:
        cli.echo(f"note: {note}")
    if result.confirmation is not None:
        cli.echo(
            f"opt-in confirmation: {result.confirmation.outcome} ({result.confirmation.reason})"
        )


def import_contacts(
    file: Annotated[
        Path, cli.Argument(help="CSV with a header line.", dir_okay=False, metavar="FILE.csv")
    ],
    enroll: Annotated[
        str | None,
        cli.Option(
            "--enroll", metavar="CAMPAIGN", help="Also enroll every imported contact in CAMPAIGN."
        ),
    ] = None,
) -> None:
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
        cli.secho(f"error: {exc}", fg=cli.colors.RED, err=True)
        raise cli.Exit(2) from exc
    deps = ready_deps()
    now = deps.clock.now()
    if enroll is not None:
        from drip.services.selection import check_enrollable

        check_enrollable(deps, enroll)
    for note in notes:
        cli.echo(f"note: {note}")
    with progress(f"importing {file.name}", len(rows)) as advance:
        report = import_rows(deps, rows, now, on_row=lambda: advance(1))
    for bad in report.bad_rows:
        cli.secho(f"{file}:{bad.describe()}", fg=cli.colors.RED, err=True)
    for note in report.notes:
        cli.echo(f"note: {note}")
    cli.echo(report.summary())
    if report.to_confirm:
        # SPEC C3, after the import committed: one held send per newly consented contact.
        scheduled = send_confirmations(deps, report.to_confirm, now)
        cli.echo(
            f"opt-in confirmations: {len(scheduled.scheduled)} scheduled; they go out through "
            "dispatch inside each contact's send window, at the senders' pace"
        )
    if enroll is not None and report.contact_ids:
        from drip.services.enrollment import enroll_many

        ids = list(dict.fromkeys(report.contact_ids))
        sends = enroll_many(deps, ids, enroll, now)
        cli.echo(
            f"enrolled the imported contacts in {enroll} (those already active left as they "
            f"were): {sends} sends scheduled"
        )
    raise cli.Exit(exit_code(report))


def contacts_list(
    state: Annotated[
        str | None, cli.Option(help="Only contacts in this state (address, else area code).")
    ] = None,
    source: Annotated[str | None, cli.Option(help="registration | import | api | manual")] = None,
    agent: Annotated[str | None, cli.Option(help="Only contacts of this agent (phone).")] = None,
    name: Annotated[str | None, cli.Option(help="Only names containing this (any case).")] = None,
    textable: Annotated[
        bool | None,
        cli.Option("--textable/--not-textable", help="Only contacts that may (not) be texted."),
    ] = None,
    not_enrolled: Annotated[
        bool, cli.Option("--not-enrolled", help="Only contacts active in no campaign.")
    ] = False,
    limit: Annotated[int, cli.Option(min=1, help="At most this many (a page).")] = 100,
    after: Annotated[
        int, cli.Option(min=0, help="Only ids above this one: the next page starts after the last.")
    ] = 0,
    as_json: Annotated[bool, cli.Option("--json", help="Print JSON (see README).")] = False,
    as_csv: Annotated[bool, cli.Option("--csv", help="Print CSV.")] = False,
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
        cli.echo("no contacts match" + (f" after id {after}" if after else ""))
        return
    cli.echo(
        f"{'id':>6}  {'name':<24} {'phone':<13} {'st':<2} {'sms':<10} {'status':<16} campaigns"
    )
    for c in page.contacts:
        who = f"{c.first_name} {c.last_name}".strip()[:24]
        cli.echo(
            f"{c.id:>6}  {who:<24} {c.phone or '-':<13} {c.state or '-':<2} {c.sms:<10} "
            f"{c.text_status:<16} {', '.join(c.campaigns) or '-'}"
        )
    line = f"{page.total} contact(s) match"
    if page.next_after is not None:
        line += f"; next page: --after {page.next_after}"
    cli.echo(line)


def contacts_opt_out(
    contact: Annotated[str, cli.Argument(help="Contact id or phone number.")],
    how: Annotated[
        str, cli.Option("--how", help='How the contact asked, e.g. "phone call", "in person".')
    ],
    by: Annotated[
        str, cli.Option("--by", help="Who took the request (recorded with the event).")
    ] = "operator",
) -> None:
    """Record an opt-out taken by phone or in person: no more texts from any sender (C4)."""
    from drip.services.contact_ops import record_opt_out
    from drip.services.contacts import find_contact

    deps = ready_deps()
    found = find_contact(deps, contact)
    cli.echo(record_opt_out(deps, found.id, how=how, by=by, now=deps.clock.now()))


def contacts_status(
    contact: Annotated[str, cli.Argument(help="Contact id or phone number.")],
    status: Annotated[str, cli.Argument(help="cannot_be_texted | textable")],
    by: Annotated[str, cli.Option("--by", help="Who decided (recorded).")] = "operator",
) -> None:
    """Set the operator's text status: cannot_be_texted (a revocation) or textable again."""
    from drip.domain.enums import TextStatus
    from drip.services.contact_ops import change_text_status
    from drip.services.contacts import find_contact

    if status not in (TextStatus.CANNOT_BE_TEXTED.value, TextStatus.TEXTABLE.value):
        raise fail(f"STATUS: {status!r}; expected cannot_be_texted or textable", 2)
    deps = ready_deps()
    found = find_contact(deps, contact)
    cli.echo(change_text_status(deps, found.id, TextStatus(status), by=by, now=deps.clock.now()))
