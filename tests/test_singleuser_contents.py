"""notebooks_service.singleuser.contents: the home at the root, another manager's files at a mount (s3/ in
the images). Two folders on disk stand for the home and the bucket; test_workspace_data shows the real
bucket through a real JupyterLab."""

import pytest
from jupyter_server.services.contents.largefilemanager import LargeFileManager
from tornado.web import HTTPError

from notebooks_service.singleuser.contents import MountedContentsManager


@pytest.fixture
def contents(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "bucket").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("home")
    (tmp_path / "bucket" / "scene.txt").write_text("bucket")
    return MountedContentsManager(
        manager_classes={"": LargeFileManager, "s3": LargeFileManager},
        manager_kwargs={"": {"root_dir": str(tmp_path / "home")}, "s3": {"root_dir": str(tmp_path / "bucket")}},
    )


def text(path: str, content: str) -> dict:
    return {"type": "file", "format": "text", "content": content}


def test_the_root_lists_the_home_and_the_mount(contents):
    names = {(m["name"], m["path"], m["type"]) for m in contents.get("")["content"]}
    assert names == {("notes.txt", "notes.txt", "file"), ("s3", "s3", "directory")}


def test_a_mount_lists_its_own_files_under_its_name(contents):
    listing = contents.get("s3")
    assert listing["path"] == "s3"
    assert [(m["name"], m["path"]) for m in listing["content"]] == [("scene.txt", "s3/scene.txt")]
    assert contents.get("s3/scene.txt")["content"] == "bucket"


def test_saving_renaming_and_deleting_go_to_the_right_manager(contents, tmp_path):
    saved = contents.save(text("s3/new.txt", "written"), "s3/new.txt")
    assert saved["path"] == "s3/new.txt"
    assert (tmp_path / "bucket" / "new.txt").read_text() == "written"
    contents.rename("s3/new.txt", "s3/renamed.txt")
    assert contents.file_exists("s3/renamed.txt") and not contents.file_exists("s3/new.txt")
    contents.rename("s3/renamed.txt", "moved.txt")  # across managers: copied, then deleted
    assert (tmp_path / "home" / "moved.txt").read_text() == "written"
    assert not (tmp_path / "bucket" / "renamed.txt").exists()
    contents.delete("moved.txt")
    assert not (tmp_path / "home" / "moved.txt").exists()


def test_untitled_files_and_copies_are_named_in_the_mount(contents):
    model = contents.new_untitled("s3", type="notebook")
    assert model["path"] == "s3/Untitled.ipynb"
    copy = contents.copy("s3/scene.txt", "s3")
    assert copy["path"].startswith("s3/scene-Copy")


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (lambda c: c.delete("s3"), 400),
        (lambda c: c.rename("s3", "elsewhere"), 400),
        (lambda c: c.save(text("s3", "x"), "s3"), 400),
        (lambda c: c.get("../etc/passwd"), 404),
        (lambda c: c.get("s3/../../etc"), 404),
    ],
)
def test_a_mount_cannot_be_removed_and_nothing_leads_out_of_the_root(contents, action, status):
    with pytest.raises(HTTPError) as refused:
        action(contents)
    assert refused.value.status_code == status
    assert contents.dir_exists("s3")
