"""search/checkpoints.py's listing of a trial's checkpoints, when the trial's folder appears while
it is listed (a race the 200-trial load test hit: pyarrow's listing fails, then finds the folder and
raises FileNotFoundError, which ended the whole search)."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs

from sweetspot.search.checkpoints import _checkpoints_on_disk


class _AppearsWhileListed(pyarrow.fs.FileSystemHandler):
    """A local filesystem whose first listing fails as pyarrow's does when the folder is created
    between its failed `opendir` and its existence check."""

    def __init__(self):
        self.local, self.listings = pyarrow.fs.LocalFileSystem(), 0

    def get_file_info_selector(self, selector):
        self.listings += 1
        if self.listings == 1:
            raise FileNotFoundError(f"Cannot list directory '{selector.base_dir}'. Detail: [errno 2] No such file or directory")
        return self.local.get_file_info(selector)

    # The rest: the local filesystem's.
    def get_type_name(self): return "appears-while-listed"
    def get_file_info(self, paths): return self.local.get_file_info(paths)
    def normalize_path(self, path): return path
    def __eq__(self, other): return self is other
    def __ne__(self, other): return self is not other
    def create_dir(self, path, recursive): self.local.create_dir(path, recursive=recursive)
    def delete_dir(self, path): self.local.delete_dir(path)
    def delete_dir_contents(self, path, missing_dir_ok=False): self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)
    def delete_root_dir_contents(self): raise NotImplementedError
    def delete_file(self, path): self.local.delete_file(path)
    def move(self, src, dest): self.local.move(src, dest)
    def copy_file(self, src, dest): self.local.copy_file(src, dest)
    def open_input_stream(self, path): return self.local.open_input_stream(path)
    def open_input_file(self, path): return self.local.open_input_file(path)
    def open_output_stream(self, path, metadata): return self.local.open_output_stream(path)
    def open_append_stream(self, path, metadata): return self.local.open_append_stream(path)


def test_a_trial_folder_created_while_it_is_listed_is_listed_again(tmp_path):
    for name in ("checkpoint_000001", "checkpoint_000000", "checkpoint_tmp", "other"):
        (tmp_path / name).mkdir()
    handler = _AppearsWhileListed()
    trial = SimpleNamespace(storage=SimpleNamespace(storage_filesystem=pyarrow.fs.PyFileSystem(handler), trial_fs_path=str(tmp_path)))
    found = _checkpoints_on_disk(trial)
    assert [p.rsplit("/", 1)[1] for p in found] == ["checkpoint_000000", "checkpoint_000001"]
    assert handler.listings == 2


def test_a_trial_folder_that_is_not_there_has_no_checkpoints(tmp_path):
    trial = SimpleNamespace(storage=SimpleNamespace(storage_filesystem=pyarrow.fs.LocalFileSystem(),
                                                    trial_fs_path=str(tmp_path / "trial_x")))
    assert _checkpoints_on_disk(trial) == []
