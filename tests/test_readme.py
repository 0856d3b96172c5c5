"""Every Python snippet of README.md runs as written (in order, in one namespace, from a copy of
the repository root), and a model with networks of one's own (the README's example) loads in a
new process with the same codes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.filterwarnings("ignore::vimae.errors.VimaeNote")
def test_every_python_snippet_of_the_readme_runs(tmp_path, monkeypatch):
    assert len(SNIPPETS) >= 3
    monkeypatch.chdir(tmp_path)  # the snippets write runs/ where they run
    namespace: dict = {"__name__": "readme"}
    for i, code in enumerate(SNIPPETS):
        try:
            exec(compile(code, f"README.md snippet {i + 1}", "exec"), namespace)
        except Exception as err:  # name the snippet that failed
            pytest.fail(f"README snippet {i + 1} fails: {type(err).__name__}: {err}")
    assert (tmp_path / "runs" / "own-networks" / "checkpoint.safetensors").is_file()


def _networks_module() -> str:
    """The README's network classes, as a module of their own (mynets.py)."""
    snippet = next(s for s in SNIPPETS if "class Encoder" in s)
    return "import torch\nfrom torch import nn\n\n" + snippet.split("\nimages = ")[0]


def test_own_networks_load_in_a_new_process_with_the_same_codes(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(_networks_module())
    monkeypatch.syspath_prepend(str(tmp_path))
    import mynets

    import vimae

    images = vimae.load_dataset("digits", "train").images[:300]
    out = tmp_path / "run"
    model = vimae.fit(
        "vae", images, encoder=mynets.Encoder(outputs=16), decoder=mynets.Decoder(), steps=20,
        out=out, progress=False,
    )  # fmt: skip
    torch.save(model.encode(images), tmp_path / "codes.pt")
    script = (
        "import sys, torch, vimae, mynets\n"
        f"images = vimae.load_dataset('digits', 'train').images[:300]\n"
        f"model = vimae.load({str(out)!r}, encoder=mynets.Encoder(outputs=16),"
        " decoder=mynets.Decoder())\n"
        f"expected = torch.load({str(tmp_path / 'codes.pt')!r})\n"
        "sys.exit(0 if torch.equal(model.encode(images), expected) else 1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    config = (out / "config.json").read_text()
    assert '"arch": "custom"' in config and '"encoder_class": "mynets.Encoder"' in config
    # without the modules, the classes are rebuilt from their paths: Encoder() has 8 outputs,
    # not the 16 it was trained with, which the checkpoint says in one sentence
    refused = subprocess.run(
        [sys.executable, "-c", f"import vimae; vimae.load({str(out)!r})"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "does not fit this model's config" in refused.stderr


def test_networks_that_do_not_fit_are_one_sentence():
    import vimae
    from vimae.errors import VimaeError

    images = vimae.load_dataset("digits", "train").images[:200]
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
    decoder = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Unflatten(1, (1, 8, 8)))
    with pytest.raises(VimaeError, match=r"to \(2, 5\), but this model needs \(2, 8\)"):
        vimae.fit("vimae-l", images, encoder=encoder, decoder=decoder, latent_dim=8, steps=5)
