"""Uploaded and generated files, kept in memory as OpenAI `file` objects."""

import time
from dataclasses import dataclass
from typing import Any

from batchkit.simulate.completion import new_id

PURPOSES = ("batch", "batch_output", "assistants", "fine-tune", "vision", "user_data")


@dataclass(slots=True)
class StoredFile:
    """One file and its metadata."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """Return the OpenAI `file` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """Files by id, in upload order."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}

    def add(self, data: bytes, filename: str, purpose: str) -> StoredFile:
        """Store `data` as a new file and return it."""
        stored = StoredFile(new_id("file-"), filename, purpose, data, int(time.time()))
        self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """Return the file with `file_id`, or None."""
        return self._files.get(file_id)

    def delete(self, file_id: str) -> bool:
        """Delete the file; return False when there was none."""
        return self._files.pop(file_id, None) is not None

    def page(
        self, purpose: str | None, limit: int, after: str | None, newest_first: bool
    ) -> tuple[list[StoredFile], bool]:
        """Return a page of files after the id `after`, and whether more follow."""
        files = [f for f in self._files.values() if purpose in (None, f.purpose)]
        if newest_first:
            files.reverse()
        if after is not None:
            ids = [f.id for f in files]
            files = files[ids.index(after) + 1 :] if after in ids else []
        return files[:limit], len(files) > limit
