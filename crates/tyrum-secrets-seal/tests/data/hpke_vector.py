# Independent check of the FORMAT.md test vector: RFC 9180 base mode
# (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) written out
# from the RFC's definitions with pyca/cryptography primitives, sharing no
# code with the Rust crate. Checks RFC 9180 A.2.1 first, then the envelope.
#
#   python3 crates/tyrum-secrets-seal/tests/data/hpke_vector.py
import hmac, hashlib, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization as s

def extract(salt, ikm): return hmac.new(salt or b"\0"*32, ikm, hashlib.sha256).digest()
def expand(prk, info, n):
    out=b""; t=b""; i=1
    while len(out)<n:
        t=hmac.new(prk, t+info+bytes([i]), hashlib.sha256).digest(); out+=t; i+=1
    return out[:n]
KEM=b"KEM"+struct.pack(">H",0x20)
SUITE=b"HPKE"+struct.pack(">HHH",0x20,1,3)
def lext(sid,salt,label,ikm): return extract(salt, b"HPKE-v1"+sid+label+ikm)
def lexp(sid,prk,label,info,n): return expand(prk, struct.pack(">H",n)+b"HPKE-v1"+sid+label+info, n)
def raw(pub): return pub.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
def derive(ikm):
    prk=lext(KEM,b"",b"dkp_prk",ikm); sk=lexp(KEM,prk,b"sk",b"",32)
    return X25519PrivateKey.from_private_bytes(sk)
def seal(pkR_bytes, info, aad, pt, ikmE):
    skE=derive(ikmE); enc=raw(skE.public_key())
    dh=skE.exchange(X25519PublicKey.from_public_bytes(pkR_bytes))
    eae=lext(KEM,b"",b"eae_prk",dh); ss=lexp(KEM,eae,b"shared_secret",enc+pkR_bytes,32)
    ctx=b"\0"+lext(SUITE,b"",b"psk_id_hash",b"")+lext(SUITE,b"",b"info_hash",info)
    secret=lext(SUITE,ss,b"secret",b"")
    key=lexp(SUITE,secret,b"key",ctx,32); nonce=lexp(SUITE,secret,b"base_nonce",ctx,12)
    return enc, ChaCha20Poly1305(key).encrypt(nonce, pt, aad)

skR=X25519PrivateKey.from_private_bytes(bytes.fromhex("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb"))
pkR=raw(skR.public_key())
# RFC A.2.1 self-check
enc,ct=seal(pkR, bytes.fromhex("4f6465206f6e2061204772656369616e2055726e"), b"Count-0", b"Beauty is truth, truth beauty", bytes.fromhex("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b"))
assert ct.hex()=="1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28", ct.hex()
# Envelope, following FORMAT.md
node=b"build-7"; handle=b"vectorHandle0123456789abcde"; call=b"call-42"
aad=b"TYSL"+bytes([1])+bytes(range(16))+struct.pack("<Q",1893456000000)+struct.pack("<Q",3)+bytes([len(node)])+node+bytes([len(handle)])+handle+struct.pack("<H",len(call))+call
enc,ct=seal(pkR, b"tyrum-secrets-seal v1", aad, b"sk-test-vector-value", bytes.fromhex("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b"))
envelope = aad + enc + ct
expected = "".join(open(__file__.rsplit("/", 3)[0] + "/FORMAT.md").read()
                   .split("<!-- vector:envelope -->")[1].split("```")[1].split())
assert envelope.hex() == expected, envelope.hex()
print("FORMAT.md's vector matches:", len(envelope), "bytes")
