-- Local accounts of the staff portal. Until now every user signed in
-- through Shibboleth and smile.utilisateur held no password. The portal
-- served by ewpd (/portal/) also accepts a local password for accounts
-- that have one (`ewpctl user add --password-stdin`, `ewpctl user
-- passwd`): only its scrypt hash is stored, in the form written by
-- gateway/portal/portal_password.c, and the CHECK below refuses anything
-- else (a plaintext, another scheme, parameters outside the bounds ewpd
-- accepts). NULL keeps an account single-sign-on only.
--
-- failed_logins and locked_until carry the portal's lockout (5 failed
-- passwords in a row lock the account for 15 minutes; `ewpctl user
-- unlock` clears both). lang is the user's interface language, NULL for
-- the default (French).
ALTER TABLE smile.utilisateur
    ADD COLUMN password_hash text
        CONSTRAINT utilisateur_password_hash_format CHECK (password_hash ~
            '^\$scrypt\$ln=(1[0-9]|20),r=([1-9]|[12][0-9]|3[0-2]),p=[1-4]\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$'),
    ADD COLUMN failed_logins integer NOT NULL DEFAULT 0
        CONSTRAINT utilisateur_failed_logins_not_negative CHECK (failed_logins >= 0),
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN lang text
        CONSTRAINT utilisateur_lang_known CHECK (lang IN ('fr', 'en'));

COMMENT ON TABLE smile.utilisateur IS
    'Users (SMILE unicaen_utilisateur_user); login by Shibboleth, or by a local password for accounts with a password_hash';
COMMENT ON COLUMN smile.utilisateur.password_hash IS
    '$scrypt$ln=..,r=..,p=..$salt$hash (base64, no padding) of the local password; NULL: single sign-on only';
COMMENT ON COLUMN smile.utilisateur.failed_logins IS
    'Wrong local passwords in a row since the last successful login or unlock';
COMMENT ON COLUMN smile.utilisateur.locked_until IS
    'No local-password login before this time (portal lockout); NULL: not locked';
COMMENT ON COLUMN smile.utilisateur.lang IS
    'Portal interface language, fr or en; NULL: the default (fr)';
