-- Servers whose TLS certificate the user chose to trust though no authority the system knows
-- vouches for it (a self-signed one): the server's URL, and the SHA-256 fingerprint they compared
-- with the one the host gave them. Kept across logins and accounts.
CREATE TABLE trusted_certificates (
    server TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL
);
