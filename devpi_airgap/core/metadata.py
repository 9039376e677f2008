"""What a wheel says about itself: its METADATA, read straight from the archive.

Licenses and a server's Python floor are both taken from here rather than from
the index, so that the offline side can re-read them from the very files it
is about to serve.
"""

from __future__ import annotations

import email.parser
import zipfile
from email.message import Message
from pathlib import Path

from devpi_airgap.core.errors import VerificationError


class MetadataError(VerificationError):
    """A wheel's METADATA is missing or cannot be read."""


def read_metadata(wheel: Path) -> Message:
    """The wheel's core metadata; headers keep their order and may repeat (Classifier)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            # The dist-info directory sits at the top of the archive; a vendored
            # package's own dist-info deeper down is not this wheel's metadata.
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise MetadataError(
                    f"{wheel.name} has {len(names) or 'no'} top-level .dist-info/METADATA; "
                    "the file is not a valid wheel: delete it and run `inv download` again"
                )
            text = archive.read(names[0]).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError) as exc:
        raise MetadataError(
            f"{wheel.name} cannot be opened as a wheel ({exc}); delete it and run `inv download` again"
        ) from None
    return email.parser.Parser().parsestr(text, headersonly=True)
