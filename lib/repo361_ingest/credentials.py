"""Where the client credentials come from: the environment, or a Databricks secret scope.

Never from a config file or the command line, so they cannot end up in a repo or a shell history.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from repo361_ingest.auth import Credentials
from repo361_ingest.config import IngestConfig
from repo361_ingest.errors import ConfigError

CLIENT_ID_ENV = "REPO361_CLIENT_ID"
CLIENT_SECRET_ENV = "REPO361_CLIENT_SECRET"


def resolve_credentials(
    config: IngestConfig, environ: Mapping[str, str] | None = None, dbutils: Any = None
) -> Credentials:
    """Credentials from the secret scope named in the config, else from the environment."""
    if config.secret_scope:
        if dbutils is None:
            raise ConfigError(
                f"config key 'secret_scope' is set ({config.secret_scope!r}) but Databricks"
                " dbutils is not available here; unset it and use"
                f" {CLIENT_ID_ENV} / {CLIENT_SECRET_ENV} instead"
            )
        return Credentials(
            client_id=dbutils.secrets.get(config.secret_scope, config.secret_client_id_key),
            client_secret=dbutils.secrets.get(config.secret_scope, config.secret_client_secret_key),
        )
    env = os.environ if environ is None else environ
    missing = [name for name in (CLIENT_ID_ENV, CLIENT_SECRET_ENV) if not env.get(name)]
    if missing:
        raise ConfigError(
            f"credentials missing: set {' and '.join(missing)} in the environment"
            " (or 'secret_scope' on Databricks)"
        )
    return Credentials(client_id=env[CLIENT_ID_ENV], client_secret=env[CLIENT_SECRET_ENV])


def databricks_dbutils(spark: Any) -> Any:
    """dbutils on Databricks (jobs and notebooks), None elsewhere."""
    try:
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
    except ImportError:
        return None
    return DBUtils(spark)
