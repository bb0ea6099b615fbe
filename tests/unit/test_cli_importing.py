"""cli.importing(): imports without the garbage collector, which is then as it was."""

from __future__ import annotations

import gc

import pytest

from drip.cli.framework import importing


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_inside_and_as_it_was_after(enabled: bool) -> None:
    """Inside the block the collector is off; after it (also after an error) it is as before."""
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with importing():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(ImportError), importing():
            raise ImportError("no such module")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_imports_are_frozen_only_in_the_drip_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frozen after the block once keep_imports() was called (drip.cli.main), never before."""
    from drip.cli import framework

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(framework, "_freeze_imports", False)
    with importing():
        pass
    assert frozen == []
    framework.keep_imports()
    with importing():
        pass
    assert frozen == [True]
