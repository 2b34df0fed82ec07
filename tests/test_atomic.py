import pytest

from xdeepbedmap.atomic import atomic_path, partial_path, publish


def test_file_published_only_when_complete(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert not target.exists() and not partial_path(target).exists()
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"


def test_failed_overwrite_keeps_the_old_folder(tmp_path):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("complete")
    with pytest.raises(RuntimeError), atomic_path(target, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("half")
        raise RuntimeError("crash")
    assert (target / "old").read_text() == "complete"
    with atomic_path(target, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("complete")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_refuses_existing_without_overwrite(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="out.bin exists"), atomic_path(target):
        pytest.fail("the block must not run")
    staged = tmp_path / "staged"
    staged.write_bytes(b"new")
    with pytest.raises(FileExistsError):
        publish(staged, target)
    assert target.read_bytes() == b"keep"
