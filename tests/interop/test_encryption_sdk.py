"""The AWS Encryption SDK for Python against trent: master key providers and keyrings that call
GenerateDataKey / Encrypt / Decrypt and check the KeyId trent answers with."""

from __future__ import annotations

import os

import botocore.session
import pytest

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import (
    DiscoveryAwsKmsMasterKeyProvider,
    DiscoveryFilter,
    KMSMasterKey,
    KMSMasterKeyConfig,
    StrictAwsKmsMasterKeyProvider,
)

from kmsutil import DEV_ACCESS_KEY, DEV_ACCOUNT, DEV_SECRET_KEY, REGION


@pytest.fixture
def esdk():
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


@pytest.fixture
def botocore_session_at_trent(dev_server, monkeypatch, tmp_path):
    """A botocore session whose KMS clients go to trent: AWS_ENDPOINT_URL_KMS plus dummy credentials,
    exactly as an application would configure it, isolated from any real AWS configuration."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", dev_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DEV_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DEV_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return botocore.session.Session()


MESSAGE = os.urandom(100_000)  # several frames
CONTEXT = {"tenant": "acme", "purpose": "interop"}


def _context_contains(header_ctx: dict, ctx: dict) -> None:
    for k, v in ctx.items():
        assert header_ctx.get(k) == v


def test_strict_master_key_provider_round_trip(esdk, kms, botocore_session_at_trent):
    arn = kms.create_key(Description="esdk")["KeyMetadata"]["Arn"]
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[arn], botocore_session=botocore_session_at_trent)
    ciphertext, header = esdk.encrypt(source=MESSAGE, key_provider=provider, encryption_context=CONTEXT)
    assert MESSAGE not in ciphertext
    assert [edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys] == [arn]

    plaintext, dheader = esdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == MESSAGE
    _context_contains(dheader.encryption_context, CONTEXT)


def test_master_key_with_explicit_boto3_client(esdk, kms):
    arn = kms.create_key(Description="esdk explicit client")["KeyMetadata"]["Arn"]
    master_key = KMSMasterKey(config=KMSMasterKeyConfig(key_id=arn, client=kms))
    ciphertext, _ = esdk.encrypt(source=b"hello trent", key_provider=master_key, encryption_context=CONTEXT)
    plaintext, header = esdk.decrypt(source=ciphertext, key_provider=master_key)
    assert plaintext == b"hello trent"
    _context_contains(header.encryption_context, CONTEXT)


def test_alias_arn_encrypts_and_key_arn_decrypts(esdk, kms, botocore_session_at_trent, unique):
    # The SDK records the KeyId that GenerateDataKey returns; that must be the key ARN so that a
    # strict provider configured with the key ARN can decrypt.
    md = kms.create_key()["KeyMetadata"]
    name = f"alias/{unique('esdk')}"
    kms.create_alias(AliasName=name, TargetKeyId=md["KeyId"])
    enc_provider = StrictAwsKmsMasterKeyProvider(
        key_ids=[f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:{name}"], botocore_session=botocore_session_at_trent
    )
    ciphertext, header = esdk.encrypt(source=b"via alias", key_provider=enc_provider)
    assert [edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys] == [md["Arn"]]
    dec_provider = StrictAwsKmsMasterKeyProvider(key_ids=[md["Arn"]], botocore_session=botocore_session_at_trent)
    assert esdk.decrypt(source=ciphertext, key_provider=dec_provider)[0] == b"via alias"


def test_multiple_keys_and_discovery(esdk, kms, botocore_session_at_trent):
    a = kms.create_key()["KeyMetadata"]["Arn"]
    b = kms.create_key()["KeyMetadata"]["Arn"]
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[a, b], botocore_session=botocore_session_at_trent)
    ciphertext, header = esdk.encrypt(source=MESSAGE, key_provider=provider, encryption_context=CONTEXT)
    assert sorted(edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys) == sorted([a, b])

    # Either key alone decrypts (the first EDK goes through Decrypt, the second was made by Encrypt).
    for arn in (a, b):
        only = StrictAwsKmsMasterKeyProvider(key_ids=[arn], botocore_session=botocore_session_at_trent)
        assert esdk.decrypt(source=ciphertext, key_provider=only)[0] == MESSAGE

    discovery = DiscoveryAwsKmsMasterKeyProvider(
        discovery_filter=DiscoveryFilter(account_ids=[DEV_ACCOUNT], partition="aws"),
        botocore_session=botocore_session_at_trent,
    )
    assert esdk.decrypt(source=ciphertext, key_provider=discovery)[0] == MESSAGE


def test_disabled_key_stops_decryption(esdk, kms, botocore_session_at_trent):
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[arn], botocore_session=botocore_session_at_trent)
    ciphertext, _ = esdk.encrypt(source=b"soon unreadable", key_provider=provider)
    kms.disable_key(KeyId=arn)
    with pytest.raises(Exception):
        esdk.decrypt(source=ciphertext, key_provider=provider)
    kms.enable_key(KeyId=arn)
    assert esdk.decrypt(source=ciphertext, key_provider=provider)[0] == b"soon unreadable"


def test_kms_keyring_round_trip(esdk, kms):
    mpl_mod = pytest.importorskip("aws_cryptographic_material_providers.mpl")
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsKeyringInput

    arn = kms.create_key(Description="keyring")["KeyMetadata"]["Arn"]
    mpl = mpl_mod.AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    keyring = mpl.create_aws_kms_keyring(input=CreateAwsKmsKeyringInput(kms_key_id=arn, kms_client=kms))
    ciphertext, _ = esdk.encrypt(source=MESSAGE, keyring=keyring, encryption_context=CONTEXT)
    plaintext, header = esdk.decrypt(source=ciphertext, keyring=keyring, encryption_context=CONTEXT)
    assert plaintext == MESSAGE
    _context_contains(header.encryption_context, CONTEXT)
