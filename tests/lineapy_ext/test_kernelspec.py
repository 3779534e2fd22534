"""The "Python 3 (lineapy)" kernelspec: installed into a prefix, started by jupyter_client."""

import json
import os
import sys

import pytest

from lineapy_ext import kernelspec
from lineapy_ext.__main__ import main


def test_install_kernel_cli_writes_spec(tmp_path, capsys):
    assert main(["install-kernel", "--prefix", str(tmp_path), "--name", "lp"]) == 0
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "lp"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (lineapy)"
    assert spec["argv"][0] == sys.executable
    assert spec["argv"][1:3] == ["-m", "ipykernel_launcher"]
    assert kernelspec.EXTENSION_ARGUMENTS[0] in spec["argv"]
    assert str(spec_dir) in capsys.readouterr().out


def test_install_kernel_rejects_two_locations(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["install-kernel", "--user", "--prefix", str(tmp_path)])
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.slow
def test_installed_kernel_starts_with_extension_loaded(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernelspec.install(prefix=str(tmp_path))
    ksm = KernelSpecManager(
        kernel_dirs=[str(tmp_path / "share" / "jupyter" / "kernels")],
        ensure_native_kernel=False,
    )
    assert ksm.get_kernel_spec("lineapy").display_name == "Python 3 (lineapy)"
    env = dict(os.environ, LINEAPY_HOME_DIR=str(tmp_path / "home"), MLFLOW_DISABLE_TELEMETRY="true")
    km = KernelManager(kernel_name="lineapy", kernel_spec_manager=ksm)
    km.start_kernel(env=env, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        reply = kc.execute_interactive(
            "x = 41 + 1",
            user_expressions={
                "loaded": "'lineapy_ext' in get_ipython().extension_manager.loaded",
                "magic": "'lineapy' in get_ipython().magics_manager.magics['line']",
            },
            timeout=120,
        )
        exprs = reply["content"]["user_expressions"]
        assert exprs["loaded"]["data"]["text/plain"] == "True"
        assert exprs["magic"]["data"]["text/plain"] == "True"

        outputs = []
        reply = kc.execute_interactive(
            "%lineapy list",
            output_hook=lambda msg: outputs.append(msg),
            timeout=120,
        )
        assert reply["content"]["status"] == "ok"
        texts = [
            m["content"]["data"]["text/plain"]
            for m in outputs
            if m["msg_type"] == "execute_result"
        ]
        assert texts == ["no artifacts saved yet"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
