"""systemd's command-line quoting, the one rule every unit we write follows."""

from __future__ import annotations

from devpi_airgap.core.systemd import exec_line, exec_word


def test_plain_words_stay_plain_and_specials_are_escaped():
    assert exec_word("/opt/devpi-airgap/venv/bin/devpi-server") == "/opt/devpi-airgap/venv/bin/devpi-server"
    assert exec_word("50%") == '"50%%"'  # % starts a specifier in systemd
    assert exec_word("$HOME") == '"$$HOME"'  # and $ a variable
    assert exec_word('a "b"') == '"a \\"b\\""'
    assert exec_word("") == '""'


def test_a_line_is_its_words_joined():
    assert exec_line(["/usr/bin/x", "--name", "two words"]) == '/usr/bin/x --name "two words"'
