"""One CycloneDX 1.6 SBOM per target: every locked file with its purl, sha256, license, source and sets."""

from __future__ import annotations

import warnings

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from devpi_airgap import __version__
from devpi_airgap.core.inventory import Target
from devpi_airgap.core.licenses import LicenseFinding
from devpi_airgap.core.lock import LockedFile

SET_PROPERTY = "devpi-airgap:resolution-set"


def target_sbom(target: Target, files: list[LockedFile], licenses: dict[str, LicenseFinding]) -> str:
    """The SBOM as JSON text; `licenses` maps a filename to its finding (absent: no license is stated)."""
    bom = Bom()
    root = Component(
        name=f"devpi-airgap target {target.name}",
        version=__version__,
        type=ComponentType.APPLICATION,
        bom_ref=f"target:{target.name}",
        properties=[
            Property(name="devpi-airgap:platform", value=", ".join(target.platforms)),
            Property(name="devpi-airgap:python", value=target.python),
        ],
    )
    bom.metadata.component = root
    components = []
    for f in sorted(files, key=lambda f: f.filename):
        finding = licenses.get(f.filename)
        expression = finding.license.expression if finding else None
        component = Component(
            name=f.name,
            version=f.version,
            type=ComponentType.LIBRARY,
            bom_ref=f.filename,
            purl=PackageURL("pypi", None, f.name, f.version, qualifiers={"file_name": f.filename}),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f.sha256)],
            licenses=[LicenseExpression(expression)] if expression else [],
            external_references=[ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(f.url))],
            properties=[Property(name=SET_PROPERTY, value=s) for s in f.sets],
        )
        bom.components.add(component)
        components.append(component)
    # The lock keeps no dependency edges; what it does say is that the target needs every file.
    bom.register_dependency(root, components)
    with warnings.catch_warnings():  # the library warns about the missing edges we just explained
        warnings.simplefilter("ignore")
        return JsonV1Dot6(bom).output_as_string(indent=1)
