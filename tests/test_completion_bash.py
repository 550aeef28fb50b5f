"""Issue 18 §5: shell completion in a real bash, with the script `convcalc --show-completion bash` prints.

Bash breaks words at the characters of COMP_WORDBREAKS (':' among them), so `convcalc analyze zoo:tfs` reaches
the completion function as the words 'convcalc', 'analyze', 'zoo', ':', 'tfs', and readline replaces only 'tfs'.
Typer's test hooks pass the word whole and never saw this. Here bash itself runs the installed script: once with
the words as bash splits them (its completion function called by hand, any bash), and once typed with Tab in an
interactive bash inside tmux (skipped where tmux is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convcalc.cli.completion import join_colon_words

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


@pytest.fixture
def shell_dir(tmp_path):
    """An empty directory with a `convcalc` on PATH that runs this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "convcalc"
    program.write_text(f"#!{sys.executable}\nfrom convcalc.cli import main\nmain()\n")
    program.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    env.pop("COLUMNS", None)
    script = subprocess.run([str(program), "--show-completion", "bash"], capture_output=True, text=True, env=env,
                            cwd=work, timeout=60)
    assert script.returncode == 0 and "complete " in script.stdout, script.stderr
    (tmp_path / "completion.bash").write_text(script.stdout)
    return tmp_path, work, env


def test_colon_words_are_joined_and_the_kept_prefix_named():
    assert join_colon_words(["analyze", "zoo", ":", "tfs"]) == (["analyze", "zoo:tfs"], "zoo:")
    assert join_colon_words(["analyze", "zoo", ":"]) == (["analyze", "zoo:"], "zoo:")
    assert join_colon_words(["analyze", "zoo:tfs"]) == (["analyze", "zoo:tfs"], "")     # not split: kept whole
    assert join_colon_words(["analyze", "res"]) == (["analyze", "res"], "")
    assert join_colon_words(["lint", "a", ":", ":", "b"]) == (["lint", "a::b"], "a::")


def called_by_hand(shell_dir, words: list[str]) -> list[str]:
    """COMPREPLY of the installed function for ``words`` as bash splits them (the last one being completed)."""
    tmp_path, work, env = shell_dir
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (f"source {tmp_path / 'completion.bash'}\n"
               f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
               "_convcalc_completion convcalc\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run([BASH, "--norc", "--noprofile", "-c", program], capture_output=True, text=True, env=env,
                          cwd=work, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.split("\n") if line]


@pytest.mark.parametrize("command", ["analyze", "run", "rf"])
def test_bash_completes_after_zoo_colon_with_the_text_readline_replaces(shell_dir, command):
    assert called_by_hand(shell_dir, ["convcalc", command, "zoo", ":", "tfslim/v"]) == ["tfslim/vgg_16"]
    after_colon = called_by_hand(shell_dir, ["convcalc", command, "zoo", ":"])
    assert "resnet50" in after_colon and "tfslim/vgg_16" in after_colon
    assert not [name for name in after_colon if name.startswith("zoo:")]
    assert called_by_hand(shell_dir, ["convcalc", command, "res"]) == ["resnet18", "resnet50", "resnext50_32x4d"]


def test_bash_completes_block_libraries_after_zoo_colon_for_lint_and_zoo(shell_dir):
    assert called_by_hand(shell_dir, ["convcalc", "lint", "zoo", ":", "bl"]) == ["blocks/mobilenet_v3"]
    assert called_by_hand(shell_dir, ["convcalc", "zoo", "zoo", ":", "bl"]) == ["blocks/mobilenet_v3"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_tab_in_an_interactive_bash_completes_a_zoo_colon_name(shell_dir):
    tmp_path, work, env = shell_dir
    socket = f"convcalc-test-{os.getpid()}"
    rc = tmp_path / "rc.bash"
    rc.write_text(f"PS1='$ '\ncd {work}\nsource {tmp_path / 'completion.bash'}\n")
    tmux = ["tmux", "-L", socket]
    subprocess.run([*tmux, "new-session", "-d", "-s", "t", "-x", "200", "-y", "20",
                    f"{BASH} --noprofile --rcfile {rc} -i"], check=True, env=env, timeout=30)
    try:
        screen = ""
        subprocess.run([*tmux, "send-keys", "-t", "t", "convcalc analyze zoo:tfslim/v", "Tab"], check=True,
                       timeout=30)
        for _ in range(100):                  # the completion runs Python: wait for the line to change
            time.sleep(0.2)
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True,
                                    timeout=30).stdout
            if "vgg_16" in screen:
                break
        assert "$ convcalc analyze zoo:tfslim/vgg_16" in screen, screen
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=30)
