"""moto's server with its staging labels following AWS's documented behaviour.

Unpatched moto (5.x) does not record where AWSCURRENT went when UpdateSecretVersionStage moves
it, so a later PutSecretValue with AWSCURRENT relabels the wrong version: two versions end up
AWSCURRENT, reads return the old value and a pending version loses AWSPENDING. AWS moves
AWSCURRENT to the new version and gives the old one AWSPREVIOUS. Our code is what is under test,
not moto; this keeps the emulator from reporting defects of its own as ours.

Usage: python moto_server.py -H 127.0.0.1 -p PORT (the arguments of moto_server).
"""
import sys

from moto.secretsmanager import models


def reset_default_version(self, secret_version, version_id):
    for vid, v in self.versions.items():
        if vid != version_id and "AWSPREVIOUS" in v["version_stages"]:
            v["version_stages"].remove("AWSPREVIOUS")
    for vid, v in self.versions.items():
        if vid != version_id and "AWSCURRENT" in v["version_stages"]:
            v["version_stages"].remove("AWSCURRENT")
            v["version_stages"].append("AWSPREVIOUS")
    self.versions[version_id] = secret_version
    self.default_version_id = version_id


models.FakeSecret.reset_default_version = reset_default_version
_update = models.SecretsManagerBackend.update_secret_version_stage


def update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id,
                                move_to_version_id):
    out = _update(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].default_version_id = move_to_version_id
    return out


models.SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage

from moto.server import main  # noqa: E402

sys.exit(main())
