"""The lake itself, local folder and moto's S3 server: what an unreadable object says, and how local writes land."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from weather_assets.defs.resources.lake import Lake, LakeObjectUnreadableError, features_key
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.domain.hours import partition_key
from weather_assets_tests.helpers import ingest

HOUR = datetime(2026, 11, 26, 9)
HOURS = [HOUR - timedelta(hours=2), HOUR - timedelta(hours=1), HOUR]
BAD = HOURS[1]


def another_table() -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"x": [1]}).to_parquet(buffer)
    return buffer.getvalue()


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "cut short": lambda data: data[: len(data) // 2],  # what a crash left when nothing was fsynced
    "empty": lambda data: b"",
    "not parquet": lambda data: b"<html>503 Service Unavailable</html>",
    "another table": lambda data: another_table(),
}


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """Three ingested hours of station 108, in a local lake or a bucket."""
    if request.param == "local":
        lake = Lake(data_dir=str(tmp_path))
    else:
        lake = Lake(url=f"s3://{request.getfixturevalue('s3_bucket')}/weather")
    assert ingest({"kma": OfflineKMAClient(stations="108"), "lake": lake}, HOURS[0], HOURS[-1]).success
    return lake


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_an_unreadable_feature_object_is_an_error_naming_its_hour_and_object(lake: Lake, corruption: str) -> None:
    key = features_key(BAD)
    lake.write(key, CORRUPTIONS[corruption](lake.read(key)))

    with pytest.raises(LakeObjectUnreadableError) as raised:
        lake.read_features(HOURS)

    assert str(raised.value).startswith(f"features of {partition_key(BAD)}: {lake.uri(key)} is not a feature file (")
    read = lake.read_feature_hours(HOURS)  # what training and predictions read: the other hours, and the bad one named
    assert read.frame["observed_at"].unique().tolist() == [HOURS[0], HOURS[2]]
    assert read.unreadable_by_partition() == {partition_key(BAD): str(raised.value)}


def test_a_feature_object_the_folder_cannot_give_is_unreadable_too(tmp_path: Path) -> None:
    """A folder where the file should be (a sync tool's mistake): the OS error, named with the hour and the path."""
    lake = Lake(data_dir=str(tmp_path))
    assert ingest({"kma": OfflineKMAClient(stations="108"), "lake": lake}, HOURS[0], HOURS[-1]).success
    path = tmp_path / "lake" / features_key(BAD)
    path.unlink()
    path.mkdir()

    read = lake.read_feature_hours(HOURS)

    assert read.unreadable_by_partition() == {
        partition_key(BAD): f"features of {partition_key(BAD)}: {path} cannot be read: Is a directory"
    }


def child(script: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    """`script` in a Python process of its own, with `args` as sys.argv[1:], as another run's process would be."""
    return subprocess.Popen([sys.executable, "-c", script, *args], text=True, **popen)  # type: ignore[call-overload]


# A process that writes one object and is killed (SIGKILL, as the OOM killer or a node loss) just before the rename.
KILLED_WRITE = """
import os, signal, sys
from weather_assets.defs.resources.lake import Lake
os.replace = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
Lake(data_dir=sys.argv[1]).write(sys.argv[2], b"half of an hour")
"""


def folder_names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def test_a_killed_write_leaves_nothing_once_the_folder_is_written_again(tmp_path: Path) -> None:
    key = features_key(HOUR)
    killed = child(KILLED_WRITE, str(tmp_path), key)
    assert killed.wait() == -9
    folder = tmp_path / "lake" / "features"
    (left,) = folder_names(folder)  # the killed write's temporary file
    assert left.startswith(".")

    Lake(data_dir=str(tmp_path)).write(features_key(HOUR - timedelta(hours=1)), b"the hour before")

    assert folder_names(folder) == [Path(features_key(HOUR - timedelta(hours=1))).name]


# A process that writes one object and waits, between its fsync and its rename, for a line on its standard input.
PAUSED_WRITE = """
import os, sys
from weather_assets.defs.resources.lake import Lake
replace = os.replace
def paused(source, target):
    print(source, flush=True)
    sys.stdin.readline()
    replace(source, target)
os.replace = paused
Lake(data_dir=sys.argv[1]).write(sys.argv[2], b"an hour")
"""


def test_a_write_in_progress_keeps_its_temporary_file_while_another_writer_cleans_the_folder(tmp_path: Path) -> None:
    paused = child(PAUSED_WRITE, str(tmp_path), features_key(HOUR), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    temporary = Path(paused.stdout.readline().strip())
    assert temporary.exists()

    Lake(data_dir=str(tmp_path)).write(features_key(HOUR - timedelta(hours=1)), b"the hour before")

    assert temporary.exists()
    paused.communicate("go on\n")
    assert paused.returncode == 0
    assert (tmp_path / "lake" / features_key(HOUR)).read_bytes() == b"an hour"
    assert folder_names(tmp_path / "lake" / "features") == ["202611260800.parquet", "202611260900.parquet"]


def test_data_is_on_disk_before_it_is_renamed_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync before rename: after a crash the object is the old one or the new one, never an empty file."""
    calls: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recorded_replace(source: str | Path, target: str | Path) -> None:
        calls.append(("replace", str(source)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    Lake(data_dir=str(tmp_path)).write(features_key(HOUR), b"an hour")

    (renamed,) = [name for call, name in calls if call == "replace"]
    assert calls.index(("fsync", renamed)) < calls.index(("replace", renamed))
    folder = str(tmp_path / "lake" / "features")
    assert calls[-1] == ("fsync", folder)  # and the rename itself, once done


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_objects_are_readable_as_the_umask_allows(tmp_path: Path, umask: int, mode: int) -> None:
    """A lake shared by the webserver, the daemon and operators' shells: the group reads what the umask lets it."""
    script = "import os, sys\nfrom weather_assets.defs.resources.lake import Lake\n"
    script += f"os.umask({umask:#o})\nLake(data_dir=sys.argv[1]).write(sys.argv[2], b'an hour')\n"
    assert child(script, str(tmp_path), features_key(HOUR)).wait() == 0

    assert (tmp_path / "lake" / features_key(HOUR)).stat().st_mode & 0o777 == mode


def test_a_temporary_file_left_by_an_earlier_version_goes_too(tmp_path: Path) -> None:
    """Before fsync and the locks, temporary files were tempfile's `.<name>.<8 characters>`: killed ones stay."""
    folder = tmp_path / "lake" / "features"
    folder.mkdir(parents=True)
    (folder / ".202611260900.parquet.fpkk9y_n").write_bytes(b"half")

    Lake(data_dir=str(tmp_path)).write(features_key(HOUR), b"an hour")

    assert folder_names(folder) == ["202611260900.parquet"]
