#!/usr/bin/env bash
# Generates the TLS test material of oasisnet with the `openssl` CLI (OpenSSL 3).
#
#   usage: tests/scripts/make-certs.sh OUTDIR
#
# Prints OUTDIR alone on success, nothing else; on any error it says what failed on stderr and
# exits non-zero (OUTDIR is then left without its .complete stamp, so the next run starts over).
# Idempotent: when OUTDIR holds a complete set made by this same script, and its certificates that
# should be valid stay valid for 30 more days, nothing is regenerated.
#
# Contents (all PEM). Every server certificate is for DNS:localhost, IP:127.0.0.1 and IP:::1
# (subjectAltName) and signed by the root unless said otherwise; every *fullchain.pem is the leaf
# first, then its issuing CA.
#   RootCA.pem, RootCA.key          CA "Oasis Test Root CA" (RSA 2048), the trust anchor of the tests
#   OtherCA.pem, OtherCA.key        CA "Other Test CA" (RSA 2048), unrelated to the root
#   cacerts.pem                     CA "Unrelated Test CA" (ECDSA P-256), a third unrelated anchor
#   fullchain.pem, privkey.pem      RSA 2048 server; key PKCS#8 ("BEGIN PRIVATE KEY")
#   privkey_pkcs1.pem               the same RSA key as PKCS#1 ("BEGIN RSA PRIVATE KEY")
#   encrypted_pkey.pem              the same RSA key, encrypted PKCS#8 (AES-256-CBC, password "secret")
#   ec_fullchain.pem, ec_pkey.pem   ECDSA P-256 server; key SEC1 ("BEGIN EC PRIVATE KEY")
#   ec_pkey_pkcs8.pem               the same P-256 key as PKCS#8
#   ec384_fullchain.pem, ec384_pkey.pem      ECDSA P-384 server (SEC1 key)
#   ed25519_fullchain.pem, ed25519_pkey.pem  Ed25519 server (PKCS#8 key)
#   dsa_fullchain.pem, dsa_pkey.pem DSA 2048 server; key "BEGIN DSA PRIVATE KEY" (refused by TLS 1.3
#                                   stacks: the documented sample's USE_DSS case)
#   expired_fullchain.pem, expired_pkey.pem  valid 2020-01-01 .. 2021-01-01 only (expired)
#   future_fullchain.pem, future_pkey.pem    valid 2090-01-01 .. 2091-01-01 only (not yet valid)
#   wrongname_fullchain.pem, wrongname_pkey.pem  for DNS:other.example only
#   other_server_fullchain.pem, other_server_pkey.pem  a localhost server signed by OtherCA (an
#                                   issuer the tests do not trust)
#   client_fullchain.pem, client_privkey.pem            client "Oasis Test Client", signed by the root
#   other_client_fullchain.pem, other_client_privkey.pem client "Other Test Client", signed by OtherCA
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2; exit 2
fi
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is not installed" >&2; exit 1; }

self="${BASH_SOURCE[0]}"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
stamp="$out/.complete"
version="$(sha256sum "$self" | cut -d' ' -f1) $(openssl version | cut -d' ' -f2)"

FILES=(RootCA.pem RootCA.key OtherCA.pem OtherCA.key cacerts.pem
       fullchain.pem privkey.pem privkey_pkcs1.pem encrypted_pkey.pem
       ec_fullchain.pem ec_pkey.pem ec_pkey_pkcs8.pem ec384_fullchain.pem ec384_pkey.pem
       ed25519_fullchain.pem ed25519_pkey.pem dsa_fullchain.pem dsa_pkey.pem
       expired_fullchain.pem expired_pkey.pem future_fullchain.pem future_pkey.pem
       wrongname_fullchain.pem wrongname_pkey.pem other_server_fullchain.pem other_server_pkey.pem
       client_fullchain.pem client_privkey.pem other_client_fullchain.pem other_client_privkey.pem)
# Certificates that must stay valid (checked with -checkend on reuse).
VALID=(RootCA.pem OtherCA.pem cacerts.pem fullchain.pem ec_fullchain.pem ec384_fullchain.pem
       ed25519_fullchain.pem dsa_fullchain.pem wrongname_fullchain.pem other_server_fullchain.pem
       client_fullchain.pem other_client_fullchain.pem)

up_to_date() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] || return 1
  local f
  for f in "${FILES[@]}"; do [ -s "$out/$f" ] || return 1; done
  for f in "${VALID[@]}"; do openssl x509 -in "$out/$f" -noout -checkend $((30 * 86400)) >/dev/null || return 1; done
}

if up_to_date; then echo "$out"; exit 0; fi

rm -f "$stamp"
work="$(mktemp -d "$out/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

# Every openssl call: output kept, shown only when it fails.
ossl() {
  if ! openssl "$@" >"$work/ossl.log" 2>&1; then
    echo "make-certs.sh: FAILED: openssl $*" >&2
    cat "$work/ossl.log" >&2
    exit 1
  fi
}

cat > ext.cnf <<'EOF'
[req]
distinguished_name = dn
[dn]

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[server_ec]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[wrongname]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other.example

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# A minimal `openssl ca` setup (only for the certificates with dates in the past or future:
# OpenSSL 3.0's `x509 -req` cannot set notBefore).
mkdir -p ca/new
: > ca/index.txt
echo 1000 > ca/serial
cat > ca.cnf <<EOF
[ca]
default_ca = testca
[testca]
dir = $work/ca
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir/new
certificate = $work/RootCA.pem
private_key = $work/RootCA.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
organizationName = optional
commonName = supplied
EOF

rsa_key()  { ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }
ec_key()   { ossl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -pkeyopt ec_param_enc:named_curve -out "$1"; }

# ca NAME CN KEYFILE: a self-signed CA certificate NAME.pem, valid 10 years.
ca() {
  ossl req -new -x509 -key "$3" -subj "/O=oasisnet tests/CN=$2" -days 3650 -sha256 \
    -config ext.cnf -extensions ca -out "$1.pem"
}

serial=$((0x$(openssl rand -hex 4) & 0x7fffffff))
# leaf NAME CN KEYFILE SECTION ISSUER: NAME_cert.pem signed by ISSUER(.pem/.key), valid ~5 years,
# and NAME_fullchain.pem = leaf + issuer.
leaf() {
  serial=$((serial + 1))
  ossl req -new -key "$3" -subj "/O=oasisnet tests/CN=$2" -config ext.cnf -out "$1.csr"
  ossl x509 -req -in "$1.csr" -CA "$5.pem" -CAkey "$5.key" -set_serial "$serial" -days 1825 \
    -sha256 -extfile ext.cnf -extensions "$4" -out "$1_cert.pem"
  cat "$1_cert.pem" "$5.pem" > "$1_fullchain.pem"
}

# dated NAME CN KEYFILE START END: like leaf (root-signed, ECDSA server extensions), fixed dates.
dated() {
  ossl req -new -key "$3" -subj "/O=oasisnet tests/CN=$2" -config ext.cnf -out "$1.csr"
  ossl ca -batch -config ca.cnf -in "$1.csr" -startdate "$4" -enddate "$5" -notext \
    -extfile ext.cnf -extensions server_ec -out "$1_cert.pem"
  cat "$1_cert.pem" RootCA.pem > "$1_fullchain.pem"
}

# --- authorities
rsa_key RootCA.key;  ca RootCA  "Oasis Test Root CA" RootCA.key
rsa_key OtherCA.key; ca OtherCA "Other Test CA"      OtherCA.key
ec_key unrelated.key P-256; ca cacerts "Unrelated Test CA" unrelated.key

# --- RSA server: PKCS#8, PKCS#1, encrypted PKCS#8
rsa_key privkey.pem
ossl pkey -in privkey.pem -traditional -out privkey_pkcs1.pem
ossl pkcs8 -topk8 -in privkey.pem -v2 aes-256-cbc -passout pass:secret -out encrypted_pkey.pem
leaf rsa localhost privkey.pem server RootCA
mv rsa_fullchain.pem fullchain.pem

# --- ECDSA P-256 (SEC1 + PKCS#8) and P-384 (SEC1)
ec_key ec_pkey_pkcs8.pem P-256
ossl ec -in ec_pkey_pkcs8.pem -out ec_pkey.pem
leaf ec localhost ec_pkey.pem server_ec RootCA
ec_key ec384_pkcs8.pem P-384
ossl ec -in ec384_pkcs8.pem -out ec384_pkey.pem
leaf ec384 localhost ec384_pkey.pem server_ec RootCA

# --- Ed25519
ossl genpkey -algorithm ED25519 -out ed25519_pkey.pem
leaf ed25519 localhost ed25519_pkey.pem server_ec RootCA

# --- DSA 2048 (traditional "BEGIN DSA PRIVATE KEY")
ossl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -pkeyopt dsa_paramgen_q_bits:224 -out dsa_params.pem
ossl genpkey -paramfile dsa_params.pem -out dsa_pkcs8.pem
ossl pkey -in dsa_pkcs8.pem -traditional -out dsa_pkey.pem
leaf dsa localhost dsa_pkey.pem server_ec RootCA

# --- expired, not yet valid, wrong name, untrusted issuer (P-256 keys: quick to make)
ec_key expired_pkey.pem P-256
dated expired localhost expired_pkey.pem 20200101000000Z 20210101000000Z
ec_key future_pkey.pem P-256
dated future localhost future_pkey.pem 20900101000000Z 20910101000000Z
ec_key wrongname_pkey.pem P-256
leaf wrongname other.example wrongname_pkey.pem wrongname RootCA
ec_key other_server_pkey.pem P-256
leaf other_server localhost other_server_pkey.pem server_ec OtherCA

# --- client certificates
rsa_key client_privkey.pem
leaf client "Oasis Test Client" client_privkey.pem client RootCA
ec_key other_client_privkey.pem P-256
leaf other_client "Other Test Client" other_client_privkey.pem client OtherCA

# --- checks: each chain verifies against its CA (or fails for the intended reason), key matches
verify() {  # verify CAFILE CERT [openssl verify options...]
  local ca="$1" cert="$2"; shift 2
  ossl verify -CAfile "$ca" "$@" "$cert"
}
for n in fullchain ec_fullchain ec384_fullchain ed25519_fullchain dsa_fullchain; do
  verify RootCA.pem "$n.pem" -purpose sslserver -verify_hostname localhost
  verify RootCA.pem "$n.pem" -purpose sslserver -verify_ip 127.0.0.1
done
verify RootCA.pem wrongname_fullchain.pem -purpose sslserver -verify_hostname other.example
verify OtherCA.pem other_server_fullchain.pem -purpose sslserver -verify_hostname localhost
verify RootCA.pem client_fullchain.pem -purpose sslclient
verify OtherCA.pem other_client_fullchain.pem -purpose sslclient
verify RootCA.pem expired_fullchain.pem -purpose sslserver -verify_hostname localhost -no_check_time
verify RootCA.pem future_fullchain.pem -purpose sslserver -verify_hostname localhost -no_check_time
v="$(openssl verify -CAfile RootCA.pem expired_fullchain.pem 2>&1 || true)"
[[ "$v" == *"certificate has expired"* ]] \
  || { echo "make-certs.sh: expired_fullchain.pem does not fail as expired: $v" >&2; exit 1; }
v="$(openssl verify -CAfile RootCA.pem future_fullchain.pem 2>&1 || true)"
[[ "$v" == *"certificate is not yet valid"* ]] \
  || { echo "make-certs.sh: future_fullchain.pem does not fail as not yet valid: $v" >&2; exit 1; }
grep -q 'BEGIN RSA PRIVATE KEY' privkey_pkcs1.pem && grep -q 'BEGIN PRIVATE KEY' privkey.pem \
  && grep -q 'BEGIN EC PRIVATE KEY' ec_pkey.pem && grep -q 'BEGIN PRIVATE KEY' ec_pkey_pkcs8.pem \
  && grep -q 'BEGIN EC PRIVATE KEY' ec384_pkey.pem && grep -q 'BEGIN DSA PRIVATE KEY' dsa_pkey.pem \
  && grep -q 'BEGIN ENCRYPTED PRIVATE KEY' encrypted_pkey.pem \
  || { echo "make-certs.sh: a key is not in the expected PEM form" >&2; exit 1; }
pub() { openssl pkey -in "$1" -pubout 2>/dev/null; }
certpub() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null; }
for pair in fullchain.pem:privkey.pem fullchain.pem:privkey_pkcs1.pem ec_fullchain.pem:ec_pkey.pem \
            ec_fullchain.pem:ec_pkey_pkcs8.pem ec384_fullchain.pem:ec384_pkey.pem \
            ed25519_fullchain.pem:ed25519_pkey.pem dsa_fullchain.pem:dsa_pkey.pem \
            expired_fullchain.pem:expired_pkey.pem future_fullchain.pem:future_pkey.pem \
            wrongname_fullchain.pem:wrongname_pkey.pem other_server_fullchain.pem:other_server_pkey.pem \
            client_fullchain.pem:client_privkey.pem other_client_fullchain.pem:other_client_privkey.pem; do
  c="${pair%%:*}" k="${pair#*:}"
  [ -n "$(pub "$k")" ] && [ "$(pub "$k")" = "$(certpub "$c")" ] \
    || { echo "make-certs.sh: $k does not match $c" >&2; exit 1; }
done
[ "$(openssl pkey -in encrypted_pkey.pem -passin pass:secret -pubout 2>/dev/null)" = "$(pub privkey.pem)" ] \
  || { echo "make-certs.sh: encrypted_pkey.pem does not open with 'secret'" >&2; exit 1; }

# --- install into OUTDIR (keys private to the user)
chmod 600 ./*.key ./*pkey*.pem ./*privkey*.pem
for f in "${FILES[@]}"; do
  [ -s "$f" ] || { echo "make-certs.sh: $f was not made" >&2; exit 1; }
  mv -f "$f" "$out/$f"
done
echo "$version" > "$stamp"
echo "$out"
