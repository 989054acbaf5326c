# Sourced by the TLS benchmarks: `test_ca DIR` writes a test CA (DIR/ca.pem) and a
# leaf for localhost / 127.0.0.1 it signs (DIR/key.pem, DIR/chain.pem: leaf then CA),
# both ECDSA P-256, valid one day.
test_ca() {
  local dir=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=bench CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/leaf.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/ext"
  openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile "$dir/ext" -out "$dir/leaf.pem" 2>/dev/null
  cat "$dir/leaf.pem" "$dir/ca.pem" >"$dir/chain.pem"
}
