import subprocess
import sys

from flanlab.cli import COMMANDS, main


def test_unknown_command_did_you_mean(capsys):
    assert main(["modles"]) == 2
    assert "Did you mean 'models'" in capsys.readouterr().err


def test_models_lists_presets(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("smollm2-135m-instruct", "tiny-t5", "tiny-llama", "gemma3-270m"):
        assert name in out


def test_every_command_module_has_the_contract():
    import importlib

    missing = []
    for name, (module, _) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            missing.append(name)
            continue
        assert callable(mod.add_arguments) and callable(mod.run), name
    assert not missing, f"commands without a module: {missing}"


def test_console_script_help_runs():
    out = subprocess.run([sys.executable, "-m", "flanlab.cli", "--help"], capture_output=True, text=True, check=True)
    assert "models" in out.stdout
