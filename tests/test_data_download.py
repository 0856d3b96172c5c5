"""Downloads against a local HTTP server on 127.0.0.1 that serves real files from ../shared, and
safe archive extraction.

The server speaks enough HTTP/1.1 for the downloader: Range requests (206 with Content-Range), and,
on demand, a connection cut after some bytes once (an interrupted transfer) or a corrupted body.
"""

import dataclasses
import io
import re
import socket
import tarfile
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import SHARED_DATASETS as SHARED
from conftest import requires_shared_data

from vimae.data import archive, load_dataset, mnist, omniglot
from vimae.data.download import fetch, require
from vimae.errors import VimaeError

MNIST_DIR = SHARED / "mnist"
pytestmark = requires_shared_data("mnist", "omniglot")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        body = server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and server.ranges else 0
        if start >= len(body) > 0:
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = server.cut_after.pop(name, None)
        if cut is not None:  # promise the whole body, send part of it, hang up (once)
            self.wfile.write(body[start : start + cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests, httpd.cut_after, httpd.ranges = {}, [], {}, True
    for path in MNIST_DIR.glob("*.gz"):
        httpd.files[path.name] = path.read_bytes()
    for path in (SHARED / "omniglot").glob("*.zip"):
        httpd.files[path.name] = path.read_bytes()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def downloads_on(monkeypatch):
    monkeypatch.delenv("VIMAE_NO_DOWNLOAD", raising=False)


def _remote(server, stem):
    """MNIST's real entry for `stem` (published digests) with the local server as its mirror."""
    return dataclasses.replace(mnist.MNIST.remote(stem), urls=(server.url + stem + ".gz",))


def test_good_file_is_accepted_by_its_content_md5(server, tmp_path):
    # the shared copy was recompressed upstream: its .gz md5 is not the published one, the md5 of
    # its IDX content is
    path = fetch(_remote(server, "t10k-labels-idx1-ubyte"), tmp_path)
    assert path.read_bytes() == (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_corrupted_file_is_rejected_and_not_kept(server, tmp_path):
    good = server.files["t10k-labels-idx1-ubyte.gz"]
    server.files["t10k-labels-idx1-ubyte.gz"] = good[:-20] + bytes(20)
    with pytest.raises(VimaeError, match=r"download t10k-labels.*corrupt or changed.*md5"):
        fetch(_remote(server, "t10k-labels-idx1-ubyte"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    server.cut_after[name] = 300_000
    path = fetch(_remote(server, "t10k-images-idx3-ubyte"), tmp_path)
    assert server.requests == [(name, None), (name, "bytes=300000-")]
    assert path.read_bytes() == server.files[name]


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / (name + ".part")).write_bytes(server.files[name][:1000])
    fetch(_remote(server, "t10k-labels-idx1-ubyte"), tmp_path)
    assert server.requests == [(name, "bytes=1000-")]
    assert (tmp_path / name).read_bytes() == server.files[name]


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    server.ranges = False
    name = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / (name + ".part")).write_bytes(b"junk from elsewhere")
    fetch(_remote(server, "t10k-labels-idx1-ubyte"), tmp_path)
    assert (tmp_path / name).read_bytes() == server.files[name]


def test_loader_downloads_missing_files_then_loads(server, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST", dataclasses.replace(mnist.MNIST, mirrors=(server.url,)))
    data = load_dataset("mnist-t10k", "test", tmp_path)
    assert len(data) == 2_000
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_omniglot_zips_are_downloaded_by_sha256(server, tmp_path, monkeypatch):
    monkeypatch.setattr(omniglot, "MIRRORS", (server.url,))
    data = load_dataset("omniglot-small-norot", "test", tmp_path)
    assert len(data) == 780


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_mirror_gives_one_error_naming_the_files(tmp_path):
    dead = f"http://127.0.0.1:{_closed_port()}/"
    files = [
        dataclasses.replace(mnist.MNIST.remote(stem), urls=(dead + stem + ".gz",))
        for stem in mnist.STEMS["train"]
    ]
    pattern = r"train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz in .*mnist/ .*refused"
    with pytest.raises(VimaeError, match=pattern):
        require(tmp_path / "mnist", files, "MNIST (train split)")


def test_turning_downloads_off_names_the_files_without_trying(server, tmp_path, monkeypatch):
    monkeypatch.setenv("VIMAE_NO_DOWNLOAD", "1")
    with pytest.raises(VimaeError, match=r"t10k-images-idx3-ubyte\.gz.*VIMAE_NO_DOWNLOAD is set"):
        require(tmp_path, [_remote(server, "t10k-images-idx3-ubyte")], "MNIST (test split)")
    assert server.requests == []


def _zip_with(tmp_path, name):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine/a.txt", "ok")
        zf.writestr(name, "gotcha")
    return path


@pytest.mark.parametrize("name", ["../evil", "fine/../../evil", "/tmp/evil", "C:/evil"])
def test_archive_member_escaping_the_folder_is_refused(tmp_path, name):
    bad = _zip_with(tmp_path, name)
    target = tmp_path / "target"
    with pytest.raises(VimaeError, match="unsafe member"):
        archive.extract(bad, target)
    assert not (tmp_path / "evil").exists() and not list(target.rglob("*.txt"))
    with pytest.raises(VimaeError, match="unsafe member"):
        list(archive.iter_members(bad))


def test_links_in_archives_are_refused(tmp_path):
    bad = tmp_path / "link.tar.gz"
    with tarfile.open(bad, "w:gz") as tf:
        info = tarfile.TarInfo("data/escape")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(VimaeError, match="link or a device"):
        archive.extract(bad, tmp_path / "target")
    zipped = tmp_path / "link.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        info = zipfile.ZipInfo("data/escape")
        info.external_attr = 0o120777 << 16  # a symlink's mode bits
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(VimaeError, match="symbolic link"):
        archive.extract(zipped, tmp_path / "target")


def test_truncated_archive_is_named(tmp_path):
    data = (SHARED / "omniglot" / "images_background_small1.zip").read_bytes()
    cut = tmp_path / "images_background_small1.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VimaeError, match=r"images_background_small1\.zip"):
        list(archive.iter_members(cut))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("a/b.bin")
        info.size = 100_000
        tf.addfile(info, io.BytesIO(bytes(range(256)) * 391))
    short = tmp_path / "short.tar.gz"
    short.write_bytes(buf.getvalue()[:-200])
    with pytest.raises(VimaeError, match=r"short\.tar\.gz is damaged or truncated"):
        archive.extract(short, tmp_path / "out")


@pytest.mark.parametrize(
    "names, message",
    [
        ([".", "fine/a.txt"], "file member named '.'"),
        (["fine", "fine/a.txt"], "holds 'fine' both as a file and as a folder"),
        (["fine/a.txt", "fine"], "holds 'fine' both as a file and as a folder"),
        (["fine/", "fine"], "holds 'fine' both as a file and as a folder"),
        (["fine/a.txt", "fine/a.txt"], "holds the file 'fine/a.txt' twice"),
    ],
)
def test_zip_layouts_no_folder_can_hold_are_refused(tmp_path, names, message):
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        for name in names:
            zf.writestr(name, "" if name.endswith("/") else "data")
    with pytest.raises(VimaeError, match=message):
        archive.extract(path, tmp_path / "target")
    assert not list((tmp_path / "target").iterdir())


def test_extraction_is_bounded_by_what_the_archive_must_hold(tmp_path):
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data/a.bin", bytes(60_000))
        zf.writestr("data/b.bin", bytes(60_000))
    with pytest.raises(VimaeError, match=r"big\.zip declares 120000 bytes of members, more than"):
        archive.extract(path, tmp_path / "target", max_bytes=100_000)
    assert not list((tmp_path / "target").iterdir())
    archive.extract(path, tmp_path / "target", max_bytes=120_000)
    assert (tmp_path / "target" / "data" / "b.bin").stat().st_size == 60_000
