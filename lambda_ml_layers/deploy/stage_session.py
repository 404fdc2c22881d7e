"""How the deploy reaches a stage's AWS: boto3 clients, the environment for `sam`, who is calling.

The local stage gets the emulator's endpoint and dummy credentials (no real credential is
read); every other stage uses the ordinary AWS credential chain (profile, SSO, variables).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from ..config.stages import STAGES, Stage
from ..core.errors import DeployGateError, LocalAWSError
from ..local.moto_server import DUMMY_CREDENTIALS

# Variables that would send a local-stage client to a real account, or a real one elsewhere.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@dataclass(frozen=True)
class Caller:
    account: str
    arn: str


@dataclass
class StageSession:
    stage: Stage
    endpoint_url: str | None = None  # the emulator's, for an emulated stage
    _clients: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # An emulated stage without its endpoint would fall through to the real credential chain.
        if self.stage.emulated and not self.endpoint_url:
            raise LocalAWSError(
                f"Stage {self.stage.name!r} is emulated ({STAGES}) but no local emulator endpoint was given, "
                "so it would reach real AWS; refused. Fix: `inv local-aws` starts the emulator."
            )
        if not self.stage.emulated and self.endpoint_url:
            raise LocalAWSError(
                f"Stage {self.stage.name!r} is a real AWS stage ({STAGES}: emulated = false) but was handed the "
                f"local emulator's endpoint {self.endpoint_url}; refused."
            )

    def environment(self) -> dict[str, str]:
        """The environment for a subprocess (sam) that must reach this stage and nothing else."""
        env = dict(os.environ)
        env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = self.stage.region
        env["SAM_CLI_TELEMETRY"] = "0"
        if self.endpoint_url:
            for name in _CREDENTIAL_VARIABLES:
                env.pop(name, None)
            env.update({k: v for k, v in DUMMY_CREDENTIALS.items() if k != "AWS_DEFAULT_REGION"})
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
            # A fresh config: no profile of the user's may add a real endpoint or credentials.
            env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        return env

    def client(self, service: str) -> Any:
        if service not in self._clients:
            config = Config(retries={"max_attempts": 5, "mode": "standard"})
            if self.endpoint_url:
                self._clients[service] = boto3.session.Session(
                    aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
                    region_name=self.stage.region,
                ).client(service, endpoint_url=self.endpoint_url, config=config)
            else:
                self._clients[service] = boto3.session.Session(region_name=self.stage.region).client(
                    service, config=config
                )
        return self._clients[service]

    def caller(self) -> Caller:
        """Who the credentials belong to; refuses missing credentials and a pinned stage's other accounts."""
        stage = self.stage
        try:
            identity = self.client("sts").get_caller_identity()
        except NoCredentialsError:
            raise DeployGateError(
                f"No AWS credentials for stage {stage.name!r} (region {stage.region}). Fix: sign in "
                "(`aws sso login --profile NAME` then AWS_PROFILE=NAME, or `aws configure`), or rehearse with "
                "`inv deploy --stage local`, which needs none. Nothing was uploaded."
            ) from None
        except EndpointConnectionError as exc:
            raise DeployGateError(f"Cannot reach AWS for stage {stage.name!r}: {exc}. Nothing was uploaded.") from None
        except NoRegionError:
            raise DeployGateError(f"Stage {stage.name!r} has no region. Nothing was uploaded.") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DeployGateError(
                f"The AWS credentials for stage {stage.name!r} were refused: {error.get('Code')}: "
                f"{error.get('Message')}. Fix: sign in again (expired SSO or session token?). Nothing was uploaded."
            ) from None
        except BotoCoreError as exc:
            raise DeployGateError(f"AWS credentials for stage {stage.name!r}: {exc}. Nothing was uploaded.") from None
        caller = Caller(account=str(identity["Account"]), arn=str(identity["Arn"]))
        if stage.account_id and caller.account != stage.account_id:
            raise DeployGateError(
                f"Stage {stage.name!r} is pinned to AWS account {stage.account_id} (infra/stages.toml), but these "
                f"credentials are for account {caller.account} ({caller.arn}). Fix: use the stage's account's "
                "credentials (AWS_PROFILE). Nothing was uploaded."
            )
        return caller
