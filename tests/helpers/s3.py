"""The moto S3 server's bucket and fake credentials (its fixtures are in
tests/object_store/conftest.py): the tests check that the credentials never show up in any
output."""

from __future__ import annotations

BUCKET = "tickvault-test"
#: fake credentials; the tests check that they never show up in any output
ACCESS_KEY = "AKIATESTKEY0000SECRETID"
SECRET_KEY = "tvSecret-9f8e7d6c5b4a-DoNotLeak"
