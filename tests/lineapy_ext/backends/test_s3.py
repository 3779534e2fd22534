"""Values in S3: a real S3 protocol server (moto) on loopback, through s3fs.

No patched calls: every save, get, delete and list goes over HTTP to the
server started by the ``moto_server`` fixture.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

import lineapy_ext
from lineapy_ext.context import get_context
from lineapy_ext.exceptions import ArtifactNotFoundError, StorageError
from tests.conftest import S3_KEY, S3_SECRET, free_port

pytestmark = pytest.mark.filterwarnings("ignore::lineapy_ext.exceptions.LineaPyWarning")


def _keys(s3_store) -> list[str]:
    listed = s3_store["client"].list_objects_v2(Bucket=s3_store["bucket"])
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _use_s3(s3_store, **storage_options):
    opts = lineapy_ext.options
    opts.set("storage_options", storage_options or s3_store["storage_options"])
    opts.set("artifact_storage_dir", s3_store["url"])


@pytest.mark.slow
def test_save_get_list_delete_in_s3(lineapy_home, s3_store):
    _use_s3(s3_store)
    array = np.arange(2_000_000, dtype=np.float64)  # 16 MB: a multipart upload
    a1 = lineapy_ext.save(array, "arr")
    a2 = lineapy_ext.save({"k": [1, 2]}, "arr")
    lineapy_ext.save("small", "other")
    assert (a1.version, a2.version) == (1, 2)
    keys = _keys(s3_store)
    assert len(keys) == 3 and all(k.startswith("team/values/") and k.endswith(".pkl") for k in keys)
    assert not any("/.tmp-" in k for k in keys)
    assert {a.name: a.get_metadata()["version_count"] for a in lineapy_ext.artifact_store()} == {"arr": 2, "other": 1}
    np.testing.assert_array_equal(lineapy_ext.get("arr", 1).get_value(), array)
    assert lineapy_ext.get("arr").get_value() == {"k": [1, 2]}
    assert lineapy_ext.get("arr").get_metadata()["storage_dir"] == s3_store["url"]
    assert lineapy_ext.delete("arr", "all") == [1, 2]
    assert len(_keys(s3_store)) == 1
    with pytest.raises(ArtifactNotFoundError, match="did you mean|saved artifacts"):
        lineapy_ext.get("arr")


@pytest.mark.slow
def test_endpoint_url_as_a_top_level_option(lineapy_home, s3_store):
    _use_s3(s3_store, key=S3_KEY, secret=S3_SECRET, endpoint_url=s3_store["endpoint"])
    lineapy_ext.save([1, 2, 3], "lst")
    assert lineapy_ext.get("lst").get_value() == [1, 2, 3]
    assert len(_keys(s3_store)) == 1


@pytest.mark.slow
def test_default_credentials_from_the_environment(lineapy_home, s3_store, monkeypatch):
    import s3fs

    # No storage_options at all: endpoint and credentials from AWS_* variables.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_store["endpoint"])
    lineapy_ext.options.set("artifact_storage_dir", s3_store["url"])
    with pytest.raises(StorageError, match="cannot write value of 'envcreds'.*[Cc]redentials"):
        lineapy_ext.save(1, "envcreds")
    assert _keys(s3_store) == []
    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    assert lineapy_ext.save({"from": "env"}, "envcreds").version == 1
    assert lineapy_ext.get("envcreds").get_value() == {"from": "env"}
    assert len(_keys(s3_store)) == 1


@pytest.mark.slow
def test_another_process_sees_new_versions(lineapy_home, s3_store):
    # Listings are not cached: a version written by another kernel after this
    # one listed the directory is still found.
    import subprocess

    _use_s3(s3_store)
    lineapy_ext.save(1, "shared")
    assert lineapy_ext.cleanup(dry_run=True) == []  # lists every name's dir
    code = (
        "import lineapy_ext\n"
        f"lineapy_ext.options.set('storage_options', {s3_store['storage_options']!r})\n"
        f"lineapy_ext.options.set('artifact_storage_dir', {s3_store['url']!r})\n"
        "print(lineapy_ext.save(3, 'shared').version)\n"
    )
    env = {**__import__("os").environ}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "2"
    assert lineapy_ext.get("shared").get_value() == 3


@pytest.mark.slow
def test_unreachable_bucket_fails_fast_and_writes_nothing(lineapy_home, s3_store):
    _use_s3(s3_store)
    saved = lineapy_ext.save(np.arange(10), "reach")
    closed = f"http://127.0.0.1:{free_port()}"
    lineapy_ext.options.set(
        "storage_options", {"key": S3_KEY, "secret": S3_SECRET, "client_kwargs": {"endpoint_url": closed}}
    )
    t0 = time.monotonic()
    with pytest.raises(StorageError) as err:
        lineapy_ext.save(np.arange(10), "reach")
    assert time.monotonic() - t0 < 10
    message = str(err.value)
    assert "\n" not in message and s3_store["url"] in message and "reach" in message
    assert S3_SECRET not in message and S3_KEY not in message
    assert get_context().store.db.versions("reach") == [1]  # no row for the failed save
    t0 = time.monotonic()
    with pytest.raises(StorageError, match="cannot read value file") as err:
        lineapy_ext.get("reach").get_value()
    assert time.monotonic() - t0 < 10 and "\n" not in str(err.value)
    # The bucket is back: everything is as before the failures.
    lineapy_ext.options.set("storage_options", s3_store["storage_options"])
    np.testing.assert_array_equal(lineapy_ext.get("reach").get_value(), np.arange(10))
    assert len(_keys(s3_store)) == 1 and saved.version == 1
