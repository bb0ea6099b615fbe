"""Account keywords (SPEC §3): Spanish and French words, near misses, accents and case."""

from __future__ import annotations

from pathlib import Path

import pytest

from drip.campaigns.account_file import load_account
from drip.domain.keywords import InboundKind, classify, keyword_table
from drip.errors import CampaignError, ValidationError

REPO = Path(__file__).resolve().parents[2]
BUNDLED = load_account(REPO / "campaigns")
TABLE = keyword_table(BUNDLED.keywords)

CASES = [
    # Spanish opt-out and help
    ("PARAR", InboundKind.OPT_OUT),
    ("parar", InboundKind.OPT_OUT),
    ("Parar!", InboundKind.OPT_OUT),
    ("BAJA", InboundKind.OPT_OUT),
    ("  baja. ", InboundKind.OPT_OUT),
    ("CANCELAR", InboundKind.OPT_OUT),
    ("Cancelár", InboundKind.OPT_OUT),
    ("ALTO", InboundKind.OPT_OUT),
    ("AYUDA", InboundKind.HELP),
    ("ayúda?", InboundKind.HELP),
    # French opt-out and help, with and without the accent
    ("ARRET", InboundKind.OPT_OUT),
    ("ARRÊT", InboundKind.OPT_OUT),
    ("arrêt", InboundKind.OPT_OUT),
    ("Arrête", InboundKind.OPT_OUT),
    ("AIDE", InboundKind.HELP),
    ("aide", InboundKind.HELP),
    # English addition
    ("REMOVE", InboundKind.OPT_OUT),
    ("remove", InboundKind.OPT_OUT),
    # built-in words keep working, accents folded too
    ("STÓP", InboundKind.OPT_OUT),
    ("help", InboundKind.HELP),
    ("START", InboundKind.OPT_IN),
    # near misses: ordinary text (whole-message matching)
    ("PARA", InboundKind.TEXT),
    ("parar de enviar mensajes por favor ahora mismo gracias amigo mío", InboundKind.TEXT),
    ("BAJAR", InboundKind.TEXT),
    ("baja el precio?", InboundKind.TEXT),
    ("CANCELA", InboundKind.TEXT),
    ("AYUDAME con la casa", InboundKind.TEXT),
    ("ARRETS", InboundKind.TEXT),
    ("aider", InboundKind.TEXT),
    ("REMOVED", InboundKind.TEXT),
    ("alto precio", InboundKind.TEXT),
]


@pytest.mark.parametrize(("body", "kind"), CASES, ids=[c[0] for c in CASES])
def test_bundled_account_words_and_near_misses(body: str, kind: InboundKind) -> None:
    """Whole-message, case- and accent-insensitive; anything longer or different is text."""
    assert classify(body, keywords=TABLE).kind is kind


def test_the_bundled_account_adds_the_required_words() -> None:
    """PARAR, BAJA, CANCELAR and ARRET opt out; AYUDA and AIDE are help; REMOVE opts out."""
    words = dict(BUNDLED.keywords)
    for word in ("PARAR", "BAJA", "CANCELAR", "ARRET", "REMOVE"):
        assert words[word] == "opt_out"
    assert words["AYUDA"] == "help"
    assert words["AIDE"] == "help"


def test_the_bundled_file_cites_its_sources() -> None:
    """account.yaml names Twilio's and the carriers' published lists and the date checked."""
    text = (REPO / "campaigns" / "account.yaml").read_text("utf-8")
    assert "twilio.com/docs/proxy/opt-out-keywords" in text
    assert "spanish-language-short-code" in text
    assert "2026-11-30" in text


def test_without_the_account_table_spanish_words_are_text() -> None:
    """The words come from the account: the built-in table alone knows none of them."""
    assert classify("PARAR").kind is InboundKind.TEXT
    assert classify("ARRÊT").kind is InboundKind.TEXT


def test_an_account_word_never_changes_a_built_in_family() -> None:
    """Declaring STOP as help leaves STOP an opt-out."""
    table = keyword_table((("STOP", "help"),))
    assert table["STOP"] is InboundKind.OPT_OUT


def test_an_unknown_family_is_refused() -> None:
    """A family other than opt_out, help, opt_in is a ValidationError naming it."""
    with pytest.raises(ValidationError, match="quit"):
        keyword_table((("BASTA", "quit"),))


def test_account_file_errors_are_located(tmp_path: Path) -> None:
    """A built-in word in another family and an unknown family are located errors."""
    path = tmp_path / "account.yaml"
    path.write_text("keywords:\n  help: [STOP]\n  quit: [BASTA]\n", encoding="utf-8")
    with pytest.raises(CampaignError) as info:
        load_account(path)
    text = str(info.value)
    assert "already a built-in opt_out keyword" in text
    assert "quit" in text
