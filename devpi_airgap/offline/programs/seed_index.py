"""seed_index.py SERVERDIR EXPORT USER INDEX: a fresh devpi server dir holding USER/INDEX with every wheel in EXPORT.

Run with the devpi venv's python, as the service user; stdin is JSON
{"root_password", "user_password"}. EXPORT holds the wheels and forms.json,
{filename: the form fields an upload of that file sends}.

Why not upload: devpi-server spends most of an upload parsing the multipart
body line by line and committing once per file. devpi-import takes the files
from disk (hard-linked), a transaction per project. To leave the index as an
upload of the same files would, the release metadata is built from the upload
forms with devpi-server's own key lists and the file_upload view's rules: the
first file of a version registers every key, later ones update the keys they
carry; "UNKNOWN" is empty; list fields drop empty items. Files go in filename
order, so the outcome does not depend on upload order.

The import runs into SERVERDIR.seed, which is renamed into place only when it
succeeded: a failed seed leaves no half-initialised server behind.
"""

import contextlib
import email.utils
import io
import json
import os
import re
import shutil
import sys
import time

FORMS = "forms.json"


def versiondata(forms):
    """name -> version -> metadata, as successive file_upload calls of these forms leave it."""
    from devpi_server.model import PrivateStage  # the server's venv has it; the deploying machine need not

    projects = {}
    for filename in sorted(forms):
        form = forms[filename]
        new = {}
        for key in PrivateStage.metadata_keys:
            if key not in form:
                continue
            value = form[key]
            if key in PrivateStage.metadata_list_fields:
                new[key] = [item for item in (value if isinstance(value, list) else [value]) if item]
            else:
                value = value[-1] if isinstance(value, list) else value  # a repeated single field: the last wins
                new[key] = "" if value == "UNKNOWN" else value
        norm = normalize(new["name"])
        versions = projects.setdefault(norm, {})
        if new["version"] not in versions:
            versions[new["version"]] = {
                key: [] if key in PrivateStage.metadata_list_fields else "" for key in PrivateStage.metadata_keys
            }
        versions[new["version"]].update(new)
    return projects


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def dataindex(forms, user, index, user_password):
    from devpi_server.auth import hash_password

    stage = f"{user}/{index}"
    now = time.time()
    files = []
    for filename in sorted(forms):
        form = forms[filename]
        files.append(
            {
                "type": "releasefile",
                "projectname": normalize(form["name"]),
                "version": form["version"],
                "relpath": filename,
                "entrymapping": {
                    "hashes": {"sha256": form["sha256_digest"]},
                    "last_modified": email.utils.formatdate(now, usegmt=True),
                },
                "log": [{"what": "upload", "who": user, "when": list(time.gmtime(now)[:6]), "dst": stage}],
            }
        )
    return {
        "dumpversion": "2",
        "users": {user: {"username": user, "pwhash": hash_password(user_password)}},
        "indexes": {
            stage: {
                "indexconfig": {"type": "stage", "bases": [], "volatile": False},
                "projects": versiondata(forms),
                "files": files,
            }
        },
    }


def main():
    serverdir, export, user, index = sys.argv[1:5]
    secrets = json.load(sys.stdin)
    if os.path.isdir(serverdir) and os.listdir(serverdir):
        sys.exit(
            f"{serverdir} holds files but no devpi data (no .nodeinfo); nothing was imported. "
            "Move it aside (or remove it, if nothing in it is needed) and deploy again"
        )
    from devpi_server.importexport import import_

    with open(os.path.join(export, FORMS)) as f:
        forms = json.load(f)
    index_json = os.path.join(export, "dataindex.json")
    # it holds a password hash: the service user's alone
    fd = os.open(index_json, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dataindex(forms, user, index, secrets["user_password"]), f)
    staging = serverdir + ".seed"
    shutil.rmtree(staging, ignore_errors=True)
    for key in [k for k in os.environ if k.startswith("DEVPISERVER_")]:
        del os.environ[key]
    os.environ["DEVPISERVER_ROOT_PASSWD"] = secrets["root_password"]  # devpi reads it from here, never from argv
    argv = [
        "devpi-import",
        "--serverdir",
        staging,
        "--no-root-pypi",
        "--hard-links",
        # devpi-web indexes on the service's first start, as it does after uploads
        "--no-events",
        export,
    ]
    said = io.StringIO()
    try:
        # in this process: devpi-server is imported once, not twice
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            code = import_(argv=argv)
    except BaseException as exc:  # devpi's Fatal and SystemExit alike: report them, leave nothing behind
        said.write(f"\n{type(exc).__name__}: {exc}")
        code = 1
    finally:
        os.unlink(index_json)
    if code:
        shutil.rmtree(staging, ignore_errors=True)
        sys.stderr.write("devpi-import failed:\n" + "\n".join(said.getvalue().splitlines()[-20:]) + "\n")
        sys.exit(1)
    if os.path.isdir(serverdir) and not os.listdir(serverdir):
        os.rmdir(serverdir)  # made empty by an earlier run that stopped before its import
    os.rename(staging, serverdir)


if __name__ == "__main__":
    main()
