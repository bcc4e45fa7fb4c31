"""The command line's basics: the verb table, help, --version, completion, the examples."""
import re
import subprocess

import pytest

from sxctl import FIRMWARE_DIR, __version__, cli
from sxproto import schema


def _out(capsys, argv, status=0):
    try:
        got = cli.main(argv)
    except SystemExit as e:  # argparse's --help and --version
        got = e.code
    assert got == status, argv
    return capsys.readouterr().out


def test_bare_sxctl_prints_the_verb_table(capsys):
    out = _out(capsys, [])
    listed = re.findall(r"^    (\w+)", out, re.M)
    assert listed == list(cli.VERBS) + ["help"]


@pytest.mark.parametrize("verb", ["flash", "config", "example"])
def test_help_verb_is_verb_dash_dash_help(capsys, verb):
    assert _out(capsys, ["help", verb]) == _out(capsys, [verb, "--help"])
    assert ("usage: sxctl %s" % verb) in _out(capsys, ["help", verb])


def test_version_names_package_firmware_and_schema(capsys):
    source = (FIRMWARE_DIR / "version.py").read_text()
    firmware = ".".join(re.search(r"^%s = const\((\d+)\)" % part, source, re.M).group(1)
                        for part in ("MAJOR", "MINOR", "PATCH"))
    assert _out(capsys, ["--version"]).strip() == "sxctl %s, firmware %s, schema fingerprint %08x" % (
        __version__, firmware, schema.fingerprint())


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_knows_every_verb_and_its_options(capsys, shell):
    script = _out(capsys, ["completion", shell])
    for verb in cli.VERBS:
        assert verb in script
    assert "--board" in script and "--stages" in script  # options of flash and sim


def test_bash_completes_verbs_and_options(capsys, tmp_path):
    script = tmp_path / "sxctl.bash"
    script.write_text(_out(capsys, ["completion", "bash"]))

    def complete(*words):
        line = 'source %s; COMP_WORDS=(sxctl %s); COMP_CWORD=%d; _shtab_sxctl; printf "%%s\\n" "${COMPREPLY[@]}"' % (
            script, " ".join(words), len(words))
        return subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=True).stdout.split()

    assert complete("fl") == ["flash"]
    assert complete("flash", "--bo") == ["--board"]
    assert sorted(complete("ex")) == ["example", "export"]


def test_example_plant_file_passes_config_check(capsys, tmp_path):
    assert _out(capsys, ["example"]).split() == ["hs-benchmark", "plant", "sx-cascade"]
    path = tmp_path / "plant.toml"
    path.write_text(_out(capsys, ["example", "plant"]))
    assert "[[stage]]" in path.read_text()
    _out(capsys, ["config", "check", str(path)])
    assert cli.main(["example", "no-such-plant"]) == 1
    assert "the examples are: hs-benchmark, plant, sx-cascade" in capsys.readouterr().err


def test_a_verb_needing_the_unix_port_names_the_sim_extra_in_one_line(capsys, monkeypatch, tmp_path):
    from sxctl import toolchain

    monkeypatch.delenv("MICROPYTHON", raising=False)
    monkeypatch.setattr(toolchain.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["sim", "--stages", "1", "--ports-file", str(tmp_path / "p.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'sxctl[sim]'" in err, err
    assert not (tmp_path / "p.json").exists()
