"""The S3-API server fixtures of the shared-store tests, for executor tests on s3:// stores."""

from tests.artifacts.remote.conftest import _no_aws_environment, bucket, s3_server

__all__ = ["_no_aws_environment", "bucket", "s3_server"]
