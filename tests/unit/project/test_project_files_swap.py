"""Issue 10 §9: what is read is what was checked. A file swapped after the check (for another file, or for a
symlink) is refused; running out of descriptors is reported as SourceBusy, not as a broken file."""
import errno
import os

import pytest

from madace_status.project import files


def test_a_file_swapped_after_the_check_is_refused(tmp_path, monkeypatch):
    checked = tmp_path / "checked.json"
    checked.write_text("{}")
    other = tmp_path / "other.json"
    other.write_text("{}")
    real_lstat = os.lstat
    monkeypatch.setattr(files.os, "lstat", lambda path: real_lstat(str(other)))   # the check saw another inode
    with pytest.raises(files.SourceError, match="changed while being read"):
        files.read_source(str(checked), str(tmp_path), 1024)


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="the platform has no O_NOFOLLOW")
def test_a_symlink_swapped_in_after_the_check_is_not_followed(tmp_path, monkeypatch):
    target = tmp_path / "target.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    os.symlink(str(target), str(link))
    real_lstat = os.lstat
    # the check saw a regular file at `link` (as before a swap); the open finds a symlink there
    monkeypatch.setattr(files.os, "lstat", lambda path: real_lstat(str(target)))
    with pytest.raises(files.SourceError, match="became a symlink"):
        files.read_source(str(link), str(tmp_path), 1024)


def test_a_symlink_inside_the_root_is_still_read(tmp_path):
    target = tmp_path / "target.json"
    target.write_text('{"a": 1}')
    link = tmp_path / "link.json"
    os.symlink(str(target), str(link))
    assert files.read_source(str(link), str(tmp_path), 1024) == b'{"a": 1}'


def test_emfile_is_source_busy(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    path.write_text("{}")

    def no_descriptors(*args, **kwargs):
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
    monkeypatch.setattr(files.os, "open", no_descriptors)
    with pytest.raises(files.SourceBusy) as caught:
        files.read_source(str(path), str(tmp_path), 1024)
    assert files.is_busy_reason(str(caught.value))
