"""The verified downloader, against a local HTTP server on 127.0.0.1 (never the internet)."""
import functools
import hashlib
import http.server
import re
import socket
import threading

import pytest

from srnn.datasets import registry
from srnn.datasets.registry import DataError, DataFile, fetch

PAYLOAD = bytes(range(256)) * 40


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _entry(*urls, name="blob.bin", data=PAYLOAD):
    return DataFile(name, hashlib.sha256(data).hexdigest(), len(data), tuple(urls))


def _dead_url():
    """A URL on a port of 127.0.0.1 that nothing listens on: a machine with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/blob.bin"


def test_download_is_verified_then_reused_offline(server, tmp_path):
    www, base = server
    (www / "blob.bin").write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    path = fetch(_entry(f"{base}/blob.bin"), cache)
    assert path == cache / "blob.bin" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in cache.iterdir()) == ["blob.bin"]  # no temporary file left
    assert fetch(_entry(_dead_url()), cache) == path  # the hash matches: no download needed


def test_tampered_download_is_rejected_and_not_kept(server, tmp_path):
    www, base = server
    (www / "blob.bin").write_bytes(PAYLOAD[:-1] + b"X")  # same size, other bytes
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        fetch(_entry(f"{base}/blob.bin"), cache)
    message = str(error.value)
    assert "blob.bin" in message and "sha256" in message and "tampered" in message
    assert list(cache.iterdir()) == []


def test_oversized_download_is_rejected(server, tmp_path):
    www, base = server
    (www / "blob.bin").write_bytes(PAYLOAD * 3)
    with pytest.raises(DataError, match="more than the expected"):
        fetch(_entry(f"{base}/blob.bin"), tmp_path / "cache")


def test_next_url_is_tried_after_a_failure(server, tmp_path):
    www, base = server
    (www / "good.bin").write_bytes(PAYLOAD)
    path = fetch(_entry(f"{base}/missing.bin", f"{base}/good.bin"), tmp_path / "cache")
    assert path.read_bytes() == PAYLOAD


def test_missing_file_without_network_says_what_to_do(tmp_path):
    url = _dead_url()
    cache = tmp_path / "cache"
    entry = _entry(url)
    with pytest.raises(DataError) as error:
        fetch(entry, cache)
    message = str(error.value)
    assert "'blob.bin'" in message and url in message and entry.sha256 in message
    assert f"copy it to {cache / 'blob.bin'}" in message and "SRNN_CACHE" in message


def test_file_placed_by_hand_is_used(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(PAYLOAD)
    assert fetch(_entry(_dead_url()), cache).read_bytes() == PAYLOAD


def test_truncated_cached_file_is_reported_offline_and_replaced_online(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(PAYLOAD[:100])
    with pytest.raises(DataError, match=re.escape(str(cache / "blob.bin")) + ".*truncated"):
        fetch(_entry(_dead_url()), cache)
    www, base = server
    (www / "blob.bin").write_bytes(PAYLOAD)
    assert fetch(_entry(f"{base}/blob.bin"), cache).read_bytes() == PAYLOAD


def test_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SRNN_CACHE", str(tmp_path / "elsewhere"))
    assert registry.cache_dir() == tmp_path / "elsewhere"
    assert registry.cache_dir(tmp_path) == tmp_path
    monkeypatch.delenv("SRNN_CACHE")
    assert registry.cache_dir().parts[-2:] == (".cache", "srnn")


def test_shipped_files_verify_in_place():
    shipped = [entry for entry in registry.FILES.values() if entry.shipped]
    assert {e.name for e in shipped} == {"jsb_raw_batchsize16_seqlen100.npz", "JSB_Chorales.mat",
                                         "JSB_Chorales.pickle"}
    for entry in shipped:
        assert fetch(entry.name, cache="/nonexistent") == registry.DATA_DIR / entry.shipped


def test_damaged_shipped_file_names_the_fix(tmp_path, monkeypatch):
    (tmp_path / "jsb").mkdir()
    (tmp_path / "jsb" / "JSB_Chorales.mat").write_bytes(b"MATLAB 5.0 but cut short")
    monkeypatch.setattr(registry, "DATA_DIR", tmp_path)
    with pytest.raises(DataError, match="git checkout -- data/jsb/JSB_Chorales.mat"):
        fetch("JSB_Chorales.mat")


def test_unknown_file_is_named():
    with pytest.raises(DataError, match="unknown data file 'nope.npz'"):
        fetch("nope.npz")


def _blob_entry(*urls, data=PAYLOAD):
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return DataFile("blob.bin", None, None, tuple(urls), git_blob=blob)


def test_file_known_by_its_git_blob_id_is_verified(server, tmp_path):
    www, base = server
    (www / "blob.bin").write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    path = fetch(_blob_entry(f"{base}/blob.bin"), cache)
    assert path.read_bytes() == PAYLOAD and registry.git_blob_of(path) == _blob_entry().git_blob
    (www / "blob.bin").write_bytes(PAYLOAD[:-1] + b"X")
    path.unlink()
    with pytest.raises(DataError, match="its git blob id is [0-9a-f]{40}, expected .*tampered"):
        fetch(_blob_entry(f"{base}/blob.bin"), cache)
    with pytest.raises(DataError, match="git blob id [0-9a-f]{40}, as `git hash-object` prints it"):
        fetch(_blob_entry(_dead_url()), cache)


def test_git_blob_id_is_gits():
    pickle = registry.DATA_DIR / "jsb" / "JSB_Chorales.pickle"
    assert registry.git_blob_of(pickle) == "3b69144b974da0d34eb62d2de6faf74a3db44c57"   # SOURCES.md


def test_registry_entries_are_complete():
    for entry in registry.FILES.values():
        if entry.sha256 is None:
            assert re.fullmatch(r"[0-9a-f]{40}", entry.git_blob) and entry.name.endswith(".pickle")
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256) and entry.size > 0
        assert entry.urls and all(u.startswith("https://raw.githubusercontent.com/") for u in entry.urls)
    for name, forms in registry.DATASETS.items():
        assert set(forms) == {"npz", "classic", "pickle"} and all(f in registry.FILES for f in forms.values())
        for form in ("npz", "classic"):
            assert set(registry.FINGERPRINTS[(name, form)]) == {"train", "valid", "test"}
