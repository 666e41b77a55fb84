-- 0001_smile_core.sql - the SMILE core: business data modelled on SMILE's own
-- tables (EsupPortail/esup-smile 1.3.31, deploy_configuration/db/*.sql) so
-- that an existing SMILE installation maps onto it, plus what EWP needs and
-- SMILE lacks (SCHAC ids, EWP surrogate ids, multilingual names, addresses,
-- contacts, modification times for `modified_since`).
--
-- Applied by `ewpctl migrate` inside one transaction (no BEGIN/COMMIT here,
-- no psql meta-commands). Never edit this file once released: changes come
-- as a new migration.
--
-- Conventions:
--   * SMILE's table names are kept where they exist (etablissement,
--     composante, formation, cours, mobilite, inscription, step,
--     stepmessage, role); columns are English snake_case, the SMILE column
--     is named in the comment when it differs.
--   * Surrogate keys are `bigint GENERATED ALWAYS AS IDENTITY`.
--   * Every format rule is a CHECK (mostly through the domains below), so a
--     bad value fails with SQLSTATE 23514 (check_violation) whichever
--     program wrote it.

CREATE SCHEMA smile;

COMMENT ON SCHEMA smile IS
    'SMILE business data (institutions, units, catalogue, incoming students, workflow, users)';

-- ---------------------------------------------------------------------------
-- Domains: the id and format rules shared by many columns
-- ---------------------------------------------------------------------------

-- EWP surrogate ids: 1-64 printable ASCII characters U+0021..U+007E,
-- case-sensitive, compared as strings (common-types.xsd
-- AsciiPrintableIdentifier). Based on text, not varchar(64), so that a
-- too-long value is a check_violation rather than a truncation error.
CREATE DOMAIN smile.ewp_id AS text
    CONSTRAINT ewp_id_format CHECK (VALUE ~ '^[!-~]{1,64}$');

-- HEI ids are SCHAC codes: lower-case domain names (at least two labels,
-- labels of 1-63 letters, digits or inner hyphens), and EWP ids, so at most
-- 64 characters.
CREATE DOMAIN smile.hei_id AS text
    CONSTRAINT hei_id_format CHECK (
        length(VALUE) <= 64
        AND VALUE ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$');

-- European Student Identifier, e.g. urn:schac:personalUniqueCode:int:esi:fr:1234
-- (the URN namespace part is matched case-insensitively, as URNs are).
CREATE DOMAIN smile.esi AS text
    CONSTRAINT esi_format CHECK (
        length(VALUE) <= 255
        AND VALUE ~* '^urn:schac:personalUniqueCode:[a-z]{2,3}:[!-~]+$');

-- One e-mail address: a non-empty local part, one @, a non-empty domain, no
-- white space. Deliberately loose: the mail server is the real judge.
CREATE DOMAIN smile.email AS text
    CONSTRAINT email_format CHECK (
        length(VALUE) <= 254
        AND VALUE ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$');

-- Participant Identification Code of the EU Funding & Tenders portal.
CREATE DOMAIN smile.pic AS text
    CONSTRAINT pic_format CHECK (VALUE ~ '^[0-9]{9}$');

-- Erasmus code as SMILE stores it (etablissement.code): upper-case country
-- prefix padded with spaces, city, number; SMILE's seed has irregular ones
-- such as 'F  PARIS 063' or 'I   PAVIA02', hence the loose pattern.
CREATE DOMAIN smile.erasmus_code AS text
    CONSTRAINT erasmus_code_format CHECK (VALUE ~ '^[A-Z][A-Z0-9 -]{0,18}[A-Z0-9]$');

-- Organisation ID of the Erasmus+ platforms, e.g. E10208908. SMILE's seed
-- also holds spreadsheet debris ('#N/D', '#VALEUR !') in this column:
-- importers store NULL for those.
CREATE DOMAIN smile.oid AS text
    CONSTRAINT oid_format CHECK (VALUE ~ '^E[0-9]{8}$');

-- Business codes (composante, formation and course codes, Apogee ELP
-- codes): printable ASCII, inner spaces allowed, none at either end.
CREATE DOMAIN smile.code AS text
    CONSTRAINT code_format CHECK (VALUE ~ '^[!-~]([ -~]{0,62}[!-~])?$');

-- BCP 47 language tag as used in xml:lang ('fr', 'en', 'en-GB', 'zh-Hant').
CREATE DOMAIN smile.lang AS text
    CONSTRAINT lang_format CHECK (VALUE ~ '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$');

-- ISO 3166-1 alpha-2 country code (EWP CountryCode).
CREATE DOMAIN smile.country AS text
    CONSTRAINT country_format CHECK (VALUE ~ '^[A-Z]{2}$');

-- http(s) URL without white space.
CREATE DOMAIN smile.url AS text
    CONSTRAINT url_format CHECK (
        length(VALUE) <= 2048 AND VALUE ~ '^https?://[^[:space:][:cntrl:]]+$');

-- Phone number in E.164 form, as EWP's PhoneNumber e164 element wants it.
CREATE DOMAIN smile.phone AS text
    CONSTRAINT phone_format CHECK (VALUE ~ '^\+[0-9]{1,15}$');

-- ---------------------------------------------------------------------------
-- Multilingual strings
-- ---------------------------------------------------------------------------
-- Names are stored as a jsonb array of {"lang": "...", "name": "..."}
-- objects ("lang" optional), in display order, e.g.
--   [{"lang": "fr", "name": "Université de Caen"},
--    {"lang": "en", "name": "University of Caen"}]
-- rather than in a child table, because:
--   * it is exactly EWP's `name+` (StringWithOptionalLang, order kept, a
--     name without xml:lang allowed, several per language allowed) and is
--     read and written whole: the Institutions / OUnits APIs print the list,
--     institution sync replaces it in one UPDATE;
--   * a change of names is a change of the owning row, so the modified_at
--     trigger sees it without a touch trigger;
--   * "at least one name" (EWP requires one) is a CHECK on the row, which a
--     child table cannot express without a deferred constraint trigger.
-- smile.valid_names() is the CHECK; `names @> '[{"lang":"fr"}]'` and
-- jsonb_array_elements() query it.
CREATE FUNCTION smile.valid_names(names jsonb, max_len integer DEFAULT 1000)
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT
AS $$
DECLARE
    e jsonb;
BEGIN
    IF jsonb_typeof(names) <> 'array' OR jsonb_array_length(names) = 0 THEN
        RETURN false;
    END IF;
    FOR e IN SELECT * FROM jsonb_array_elements(names) LOOP
        IF jsonb_typeof(e) <> 'object' THEN
            RETURN false;
        END IF;
        IF jsonb_typeof(e -> 'name') IS DISTINCT FROM 'string'
           OR btrim(e ->> 'name') = ''
           OR length(e ->> 'name') > max_len
           OR (e ? 'lang' AND (jsonb_typeof(e -> 'lang') <> 'string'
                               OR NOT (e ->> 'lang') ~ '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$'))
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(e) k WHERE k NOT IN ('lang', 'name'))
        THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

COMMENT ON FUNCTION smile.valid_names(jsonb, integer) IS
    'true when the value is a non-empty array of {"lang"?: BCP 47 tag, "name": non-blank string}';

-- ---------------------------------------------------------------------------
-- modified_at maintenance
-- ---------------------------------------------------------------------------
-- BEFORE INSERT OR UPDATE on tables with a modified_at column (what EWP's
-- `modified_since` filters compare against):
--   * INSERT: modified_at = now(), whatever the writer sent;
--   * UPDATE that changes any other column: modified_at = now();
--   * UPDATE that changes nothing (a sync re-writing identical data):
--     modified_at is kept, so partners are not told everything changed;
--   * UPDATE that only sets modified_at (a "touch", used when child rows
--     such as addresses change): modified_at = now(), never a value chosen
--     by the writer, so it cannot be moved back in time.
-- now() is the transaction start: rows written in one transaction share one
-- time. A long transaction can commit rows older than a partner's last
-- `modified_since`; EWP allows returning extra ids, so API code should
-- subtract a safety margin rather than rely on commit order.
CREATE FUNCTION smile.set_modified_at()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.modified_at := now();
    ELSIF NEW.modified_at IS DISTINCT FROM OLD.modified_at THEN
        NEW.modified_at := now();
    ELSIF NEW IS DISTINCT FROM OLD THEN
        NEW.modified_at := now();
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION smile.set_modified_at() IS
    'BEFORE INSERT OR UPDATE trigger: modified_at = now() on insert and on any real change';

-- ---------------------------------------------------------------------------
-- Institutions (SMILE etablissement)
-- ---------------------------------------------------------------------------
CREATE TABLE smile.etablissement (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SCHAC id = EWP hei-id. SMILE has none: filled from the Registry
    -- catalogue (other-id type="erasmus" / "pic") or by institution sync.
    schac_id        smile.hei_id UNIQUE,
    erasmus_code    smile.erasmus_code UNIQUE,          -- SMILE: code
    pic             smile.pic,
    oid             smile.oid,
    names           jsonb NOT NULL
                    CONSTRAINT etablissement_names_valid CHECK (smile.valid_names(names)),  -- SMILE: libelle
    abbreviation    text CHECK (btrim(abbreviation) <> '' AND length(abbreviation) <= 100),
    country         smile.country,                      -- SMILE: pays_code
    website_url     smile.url,
    logo_url        smile.url CHECK (logo_url LIKE 'https://%'),   -- EWP: HTTPS only
    factsheet_url   smile.url,
    -- true for the one HEI this installation is (SMILE leaves it implicit)
    is_local        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    -- SMILE rows are known by Erasmus code, catalogue rows by SCHAC id
    CONSTRAINT etablissement_identified CHECK (schac_id IS NOT NULL OR erasmus_code IS NOT NULL),
    -- our own HEI is served over EWP, so it needs its SCHAC id
    CONSTRAINT etablissement_local_has_schac CHECK (NOT is_local OR schac_id IS NOT NULL)
);

COMMENT ON TABLE smile.etablissement IS
    'Institutions (HEIs): ours (is_local) and partners; SMILE etablissement + SCHAC id';

-- at most one local HEI (a Discovery v6 manifest covers at most one)
CREATE UNIQUE INDEX etablissement_one_local ON smile.etablissement (is_local) WHERE is_local;
-- PIC and OID identify organisations, but the catalogue may repeat them
-- (and SMILE's own seed has a duplicate OID): indexed, not unique
CREATE INDEX etablissement_pic ON smile.etablissement (pic) WHERE pic IS NOT NULL;
CREATE INDEX etablissement_oid ON smile.etablissement (oid) WHERE oid IS NOT NULL;
CREATE INDEX etablissement_modified_at ON smile.etablissement (modified_at);

CREATE TRIGGER etablissement_modified_at
    BEFORE INSERT OR UPDATE ON smile.etablissement
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- ---------------------------------------------------------------------------
-- Organisational units (SMILE composante)
-- ---------------------------------------------------------------------------
CREATE TABLE smile.composante (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    etablissement_id bigint NOT NULL REFERENCES smile.etablissement (id) ON DELETE CASCADE,
    -- EWP ounit-id: a surrogate that never changes; ours are random UUIDs,
    -- partners' are whatever their OUnits API returns
    ounit_id        smile.ewp_id NOT NULL DEFAULT gen_random_uuid()::text,
    -- EWP ounit-code: the human-readable code, unique within the HEI
    code            smile.code NOT NULL,
    names           jsonb NOT NULL
                    CONSTRAINT composante_names_valid CHECK (smile.valid_names(names)),  -- SMILE: libelle, libelle_long
    abbreviation    text CHECK (btrim(abbreviation) <> '' AND length(abbreviation) <= 100),  -- SMILE: acronyme
    -- hierarchy: the parent unit, always of the same institution (the
    -- composite foreign key below); NULL for a root unit
    parent_id       bigint,
    website_url     smile.url,
    logo_url        smile.url CHECK (logo_url LIKE 'https://%'),
    factsheet_url   smile.url,
    -- whether the OUnits API shows this unit to partners
    is_exposed      boolean NOT NULL DEFAULT true,
    -- where the row comes from: SMILE itself, a CSV import, smile-connect
    -- (SMILE's "api" source) or EWP institution sync
    source          text NOT NULL DEFAULT 'smile'
                    CHECK (source IN ('smile', 'csv', 'api', 'ewp')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT composante_ounit_id_unique UNIQUE (etablissement_id, ounit_id),
    CONSTRAINT composante_code_unique UNIQUE (etablissement_id, code),
    -- target of the parent foreign key (a unit's id with its institution)
    CONSTRAINT composante_id_etablissement_unique UNIQUE (id, etablissement_id),
    CONSTRAINT composante_parent_fk FOREIGN KEY (parent_id, etablissement_id)
        REFERENCES smile.composante (id, etablissement_id),
    CONSTRAINT composante_not_own_parent CHECK (parent_id <> id)
);

COMMENT ON TABLE smile.composante IS
    'Organisational units (faculties, departments) of any institution; EWP ounits';

CREATE INDEX composante_parent ON smile.composante (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX composante_modified_at ON smile.composante (modified_at);

CREATE TRIGGER composante_modified_at
    BEFORE INSERT OR UPDATE ON smile.composante
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- A unit may not become its own ancestor. (Two concurrent transactions
-- could still each add half of a cycle; units are edited rarely and by one
-- importer or sync at a time.)
CREATE FUNCTION smile.composante_check_parent()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.parent_id IS NOT NULL AND EXISTS (
        WITH RECURSIVE up (id, parent_id, depth) AS (
            SELECT c.id, c.parent_id, 1 FROM smile.composante c WHERE c.id = NEW.parent_id
            UNION ALL
            SELECT c.id, c.parent_id, up.depth + 1
              FROM smile.composante c JOIN up ON c.id = up.parent_id
             WHERE up.depth < 1000)
        SELECT 1 FROM up WHERE up.id = NEW.id)
    THEN
        RAISE EXCEPTION 'composante %: parent % would make a cycle in the unit hierarchy',
                        NEW.id, NEW.parent_id
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER composante_no_cycle
    BEFORE UPDATE OF parent_id ON smile.composante
    FOR EACH ROW EXECUTE FUNCTION smile.composante_check_parent();

-- ---------------------------------------------------------------------------
-- Addresses and contacts of institutions and units (EWP FlexibleAddress,
-- Contact). Each row belongs to exactly one institution or one unit; any
-- change touches the owner's modified_at.
-- ---------------------------------------------------------------------------
CREATE TABLE smile.address (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    etablissement_id bigint REFERENCES smile.etablissement (id) ON DELETE CASCADE,
    composante_id   bigint REFERENCES smile.composante (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('street', 'mailing')),
    recipient_names text[] NOT NULL DEFAULT '{}',
    -- simple form: up to four free lines ...
    lines           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(lines) <= 4),
    -- ... or the structured form (SMILE: numstreet, street)
    building_number text,
    building_name   text,
    street_name     text,
    unit            text,
    floor           text,
    post_office_box text,
    delivery_point_codes text[] NOT NULL DEFAULT '{}',
    postal_code     text,                               -- SMILE: postcode
    locality        text,                               -- SMILE: city
    region          text,
    country         smile.country,                      -- SMILE: pays_code
    CONSTRAINT address_one_owner CHECK (num_nonnulls(etablissement_id, composante_id) = 1),
    -- FlexibleAddress is a choice: address lines or the structured fields
    CONSTRAINT address_lines_or_structured CHECK (
        cardinality(lines) = 0
        OR num_nonnulls(building_number, building_name, street_name, unit, floor,
                        post_office_box) = 0)
);

COMMENT ON TABLE smile.address IS
    'Street and mailing addresses (EWP FlexibleAddress) of institutions and units';

CREATE UNIQUE INDEX address_etablissement_kind ON smile.address (etablissement_id, kind)
    WHERE etablissement_id IS NOT NULL;
CREATE UNIQUE INDEX address_composante_kind ON smile.address (composante_id, kind)
    WHERE composante_id IS NOT NULL;

CREATE TABLE smile.contact (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    etablissement_id bigint REFERENCES smile.etablissement (id) ON DELETE CASCADE,
    composante_id   bigint REFERENCES smile.composante (id) ON DELETE CASCADE,
    position        integer NOT NULL DEFAULT 1 CHECK (position > 0),   -- display order
    names           jsonb NOT NULL
                    CONSTRAINT contact_names_valid CHECK (smile.valid_names(names)),  -- EWP contact-name+
    given_names     text,
    family_name     text,
    emails          smile.email[] NOT NULL DEFAULT '{}',
    phones          smile.phone[] NOT NULL DEFAULT '{}',
    -- EWP role-description*, same shape as names
    role_descriptions jsonb
                    CONSTRAINT contact_roles_valid CHECK (smile.valid_names(role_descriptions, 5000)),
    CONSTRAINT contact_one_owner CHECK (num_nonnulls(etablissement_id, composante_id) = 1)
);

COMMENT ON TABLE smile.contact IS 'Contacts (EWP Contact) of institutions and units';

CREATE INDEX contact_etablissement ON smile.contact (etablissement_id) WHERE etablissement_id IS NOT NULL;
CREATE INDEX contact_composante ON smile.contact (composante_id) WHERE composante_id IS NOT NULL;

CREATE FUNCTION smile.touch_owner()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        UPDATE smile.etablissement SET modified_at = now() WHERE id = NEW.etablissement_id;
        UPDATE smile.composante SET modified_at = now() WHERE id = NEW.composante_id;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        UPDATE smile.etablissement SET modified_at = now() WHERE id = OLD.etablissement_id;
        UPDATE smile.composante SET modified_at = now() WHERE id = OLD.composante_id;
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION smile.touch_owner() IS
    'AFTER trigger of address/contact: bumps modified_at of the owning institution or unit';

CREATE TRIGGER address_touch_owner
    AFTER INSERT OR UPDATE OR DELETE ON smile.address
    FOR EACH ROW EXECUTE FUNCTION smile.touch_owner();
CREATE TRIGGER contact_touch_owner
    AFTER INSERT OR UPDATE OR DELETE ON smile.contact
    FOR EACH ROW EXECUTE FUNCTION smile.touch_owner();

-- ---------------------------------------------------------------------------
-- Programmes of study and courses: our institution's catalogue
-- (SMILE formation, cours; served by Courses and Simple Course Replication)
-- ---------------------------------------------------------------------------
CREATE TABLE smile.formation (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            smile.code NOT NULL UNIQUE,         -- the "code formation" of CSV imports
    title           text NOT NULL CHECK (btrim(title) <> ''),   -- SMILE: libelle
    abbreviation    text,                               -- SMILE: acronyme
    composante_id   bigint REFERENCES smile.composante (id) ON DELETE SET NULL,
    study_level     smallint CHECK (study_level BETWEEN 0 AND 8),  -- SMILE: niveau_etude (EQF 0-8)
    language        smile.lang,                         -- SMILE: langue_enseignement_id
    open_to_mobility boolean NOT NULL DEFAULT true,     -- SMILE: ouvert_mobilite
    objectives      text,
    programme       text,
    prerequisites   text,
    bibliography    text,
    contacts        text,
    more_info       text,                               -- SMILE: informations_complementaires
    source          text NOT NULL DEFAULT 'smile' CHECK (source IN ('smile', 'csv', 'api')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE smile.formation IS 'Programmes of study of our institution (catalogue level 1)';

CREATE INDEX formation_composante ON smile.formation (composante_id) WHERE composante_id IS NOT NULL;
CREATE INDEX formation_modified_at ON smile.formation (modified_at);

CREATE TRIGGER formation_modified_at
    BEFORE INSERT OR UPDATE ON smile.formation
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

CREATE TABLE smile.cours (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            smile.code NOT NULL,                -- SMILE: code_elp (Apogee ELP code)
    title           text NOT NULL CHECK (btrim(title) <> ''),   -- SMILE: libelle
    language        smile.lang,                         -- SMILE: langue_enseignement
    s1              boolean NOT NULL DEFAULT false,     -- taught in the first semester
    s2              boolean NOT NULL DEFAULT false,     -- taught in the second semester
    ects            numeric(5,1) CHECK (ects >= 0),
    hours           numeric(6,2) CHECK (hours >= 0),    -- SMILE: vol_elp
    open_to_mobility boolean NOT NULL DEFAULT true,     -- SMILE: ouvert_mobilite
    -- the programme the course belongs to (NULL: not attached yet); a
    -- programme that still has courses cannot be deleted
    formation_id    bigint REFERENCES smile.formation (id),
    objectives      text,                               -- SMILE: objectif
    description     text,
    course_type     text,                               -- SMILE: type_cours
    source          text NOT NULL DEFAULT 'smile' CHECK (source IN ('smile', 'csv', 'api')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE smile.cours IS 'Course units of our institution (catalogue level 2)';

-- one course code per programme (the same ELP may be offered in several
-- programmes); courses without a programme count as one group
CREATE UNIQUE INDEX cours_formation_code ON smile.cours (coalesce(formation_id, 0), code);
CREATE INDEX cours_code ON smile.cours (code);
CREATE INDEX cours_formation ON smile.cours (formation_id) WHERE formation_id IS NOT NULL;
CREATE INDEX cours_modified_at ON smile.cours (modified_at);
-- the exchange-student catalogue (Simple Course Replication)
CREATE INDEX cours_open_modified_at ON smile.cours (modified_at) WHERE open_to_mobility;

CREATE TRIGGER cours_modified_at
    BEFORE INSERT OR UPDATE ON smile.cours
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- ---------------------------------------------------------------------------
-- Mobility programmes (SMILE mobilite) and what they offer
-- ---------------------------------------------------------------------------
CREATE TABLE smile.mobilite (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label           text NOT NULL UNIQUE CHECK (btrim(label) <> ''),   -- SMILE: libelle
    active          boolean NOT NULL DEFAULT true
);

COMMENT ON TABLE smile.mobilite IS 'Mobility programmes (Erasmus, summer schools, ...)';

-- SMILE's seed (2-data_007_mobilite.sql)
INSERT INTO smile.mobilite (label) VALUES
    ('Erasmus'),
    ('Ecoles d''été | Summer Schools');

CREATE TABLE smile.mobilite_formation (
    mobilite_id     bigint NOT NULL REFERENCES smile.mobilite (id) ON DELETE CASCADE,
    formation_id    bigint NOT NULL REFERENCES smile.formation (id) ON DELETE CASCADE,
    PRIMARY KEY (mobilite_id, formation_id)
);

COMMENT ON TABLE smile.mobilite_formation IS 'Programmes of study open to a mobility programme';

CREATE TABLE smile.mobilite_cours (
    mobilite_id     bigint NOT NULL REFERENCES smile.mobilite (id) ON DELETE CASCADE,
    cours_id        bigint NOT NULL REFERENCES smile.cours (id) ON DELETE CASCADE,
    active          boolean NOT NULL DEFAULT true,
    PRIMARY KEY (mobilite_id, cours_id)
);

COMMENT ON TABLE smile.mobilite_cours IS 'Courses open to a mobility programme';

-- ---------------------------------------------------------------------------
-- Users and roles (SMILE unicaen_utilisateur_*)
-- ---------------------------------------------------------------------------
CREATE TABLE smile.role (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SMILE's role_id, kept verbatim so that SMILE data maps 1:1
    code            text NOT NULL UNIQUE CHECK (code ~ '^[^[:space:][:cntrl:]]{1,64}$'),
    label           text NOT NULL UNIQUE CHECK (btrim(label) <> ''),   -- SMILE: libelle
    -- SMILE's inheritance: a role has the privileges of its parent
    parent_id       bigint REFERENCES smile.role (id),
    is_default      boolean NOT NULL DEFAULT false,     -- given to every new user
    -- whether a holder of this role can be limited to some composantes
    -- (smile.utilisateur_composante)
    scopable        boolean NOT NULL DEFAULT false,
    CONSTRAINT role_not_own_parent CHECK (parent_id <> id),
    -- target of utilisateur_composante's foreign key
    CONSTRAINT role_id_scopable_unique UNIQUE (id, scopable)
);

COMMENT ON TABLE smile.role IS 'Roles (SMILE unicaen_utilisateur_role)';

CREATE UNIQUE INDEX role_one_default ON smile.role (is_default) WHERE is_default;

-- SMILE's seed (2-data_001_utilisateurs.sql), codes and parents included.
INSERT INTO smile.role (code, label, is_default) VALUES ('Standard', 'Standard', true);
INSERT INTO smile.role (code, label, parent_id, scopable)
    SELECT 'gestionnaire', 'Gestionnaire', id, true FROM smile.role WHERE code = 'Standard';
INSERT INTO smile.role (code, label, parent_id)
    SELECT 'Référent', 'Référent', id FROM smile.role WHERE code = 'Standard';
INSERT INTO smile.role (code, label, parent_id)
    SELECT 'admin_fonctionnel', 'Administrateur fonctionnel', id FROM smile.role WHERE code = 'gestionnaire';
INSERT INTO smile.role (code, label, parent_id)
    SELECT 'administrateur', 'Administrateur technique', id FROM smile.role WHERE code = 'admin_fonctionnel';
INSERT INTO smile.role (code, label) VALUES ('guest', 'Invité');
INSERT INTO smile.role (code, label, parent_id)
    SELECT 'Etudiant', 'Etudiant', id FROM smile.role WHERE code = 'Standard';

CREATE TABLE smile.utilisateur (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- login name: eduPersonPrincipalName from Shibboleth (SMILE: username)
    username        text NOT NULL CHECK (username ~ '^[^[:space:][:cntrl:]]{1,255}$'),
    email           smile.email,
    display_name    text NOT NULL CHECK (btrim(display_name) <> ''),
    active          boolean NOT NULL DEFAULT true,      -- SMILE: state
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz
);

COMMENT ON TABLE smile.utilisateur IS 'Users (SMILE unicaen_utilisateur_user); no passwords: login is Shibboleth';

CREATE UNIQUE INDEX utilisateur_username ON smile.utilisateur (lower(username));
-- Référent role granted at first login when the e-mail matches mailreferent
CREATE INDEX utilisateur_email ON smile.utilisateur (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE smile.utilisateur_role (
    utilisateur_id  bigint NOT NULL REFERENCES smile.utilisateur (id) ON DELETE CASCADE,
    role_id         bigint NOT NULL REFERENCES smile.role (id) ON DELETE CASCADE,
    PRIMARY KEY (utilisateur_id, role_id)
);

COMMENT ON TABLE smile.utilisateur_role IS 'Roles held by users (SMILE unicaen_utilisateur_role_linker)';

CREATE INDEX utilisateur_role_role ON smile.utilisateur_role (role_id);

-- A user's role limited to some composantes: a gestionnaire with rows here
-- manages only those units (and their students); without rows, all of
-- them. Only a role the user holds (first foreign key) and only a scopable
-- role (second foreign key, through the always-true role_scopable column)
-- can be limited.
CREATE TABLE smile.utilisateur_composante (
    utilisateur_id  bigint NOT NULL,
    role_id         bigint NOT NULL,
    composante_id   bigint NOT NULL REFERENCES smile.composante (id) ON DELETE CASCADE,
    role_scopable   boolean NOT NULL DEFAULT true CHECK (role_scopable),
    PRIMARY KEY (utilisateur_id, role_id, composante_id),
    CONSTRAINT utilisateur_composante_role_held FOREIGN KEY (utilisateur_id, role_id)
        REFERENCES smile.utilisateur_role (utilisateur_id, role_id) ON DELETE CASCADE,
    CONSTRAINT utilisateur_composante_role_scopable FOREIGN KEY (role_id, role_scopable)
        REFERENCES smile.role (id, scopable)
);

COMMENT ON TABLE smile.utilisateur_composante IS
    'Composantes a user''s scopable role (Gestionnaire) is limited to';

CREATE INDEX utilisateur_composante_composante ON smile.utilisateur_composante (composante_id);

-- ---------------------------------------------------------------------------
-- The configurable workflow (SMILE step)
-- ---------------------------------------------------------------------------
CREATE TABLE smile.step (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9_-]{0,63}$'),
    label           text NOT NULL CHECK (btrim(label) <> ''),   -- SMILE: libelle
    -- SMILE: "order". "Next" is the step at the next position, so positions
    -- are 1..n without gaps (step_positions_contiguous below). Deferrable so
    -- that one UPDATE can shift several steps, and SET CONSTRAINTS can
    -- allow a reordering over several statements.
    position        integer NOT NULL CHECK (position > 0),
    active          boolean NOT NULL DEFAULT true,      -- SMILE: status
    need_validation boolean NOT NULL DEFAULT false,     -- SMILE: needvalidation
    movable         boolean NOT NULL DEFAULT true,
    fixed           boolean NOT NULL DEFAULT false,
    deletable       boolean NOT NULL DEFAULT true,
    -- the role whose holders validate this step
    role_id         bigint REFERENCES smile.role (id),
    CONSTRAINT step_position_unique UNIQUE (position) DEFERRABLE INITIALLY IMMEDIATE
);

COMMENT ON TABLE smile.step IS
    'Workflow steps of an incoming registration, in position order; inactive ones are skipped';

-- Deferred to commit: positions must then be exactly 1..n.
CREATE FUNCTION smile.step_check_positions()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    n bigint;
    top integer;
BEGIN
    SELECT count(*), coalesce(max(position), 0) INTO n, top FROM smile.step;
    IF n <> top THEN
        RAISE EXCEPTION 'workflow step positions must be 1..% without gaps (highest is %)', n, top
              USING ERRCODE = 'check_violation',
                    HINT = 'renumber the later steps in the same transaction';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER step_positions_contiguous
    AFTER INSERT OR UPDATE OF position OR DELETE ON smile.step
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION smile.step_check_positions();

-- SMILE's seed (2-data_014_step.sql), plus the home-institution approval
-- at position 6, which SMILE's seed lacks (only a commented-out
-- approval_base case exists in StepService.php), leaving nothing after
-- approval_host. ewpd may validate approval_base itself when the partner's
-- learning agreement carries the sending HEI's signature.
INSERT INTO smile.step (code, label, position, active, need_validation, movable, fixed, deletable, role_id)
SELECT s.code, s.label, s.position, true, s.need_validation, s.movable, s.fixed, s.deletable, r.id
  FROM (VALUES
        ('pre-registration',     'Pre-registration',                              1, false, false, true,  false, 'gestionnaire'),
        ('registered',           'Registered, waiting administrator validation',  2, true,  false, true,  false, 'gestionnaire'),
        ('course',               'Course selection',                              3, false, true,  false, false, 'Etudiant'),
        ('approval_educational', 'Waiting approval by educational referent',      4, true,  true,  false, true,  'gestionnaire'),
        ('approval_host',        'Waiting approval by host institution',          5, true,  true,  false, true,  'gestionnaire'),
        ('approval_base',        'Waiting approval by home institution',          6, true,  true,  false, true,  'gestionnaire'),
        ('approval_student',     'Waiting approval by student',                   7, false, true,  false, true,  'Etudiant'),
        ('contract',             'Student contract generated',                    8, false, false, true,  false, 'gestionnaire'))
       AS s (code, label, position, need_validation, movable, fixed, deletable, role_code)
  JOIN smile.role r ON r.code = s.role_code;

-- ---------------------------------------------------------------------------
-- Incoming students (SMILE inscription)
-- ---------------------------------------------------------------------------
-- SMILE's status / statuslibelle pairs (Entity/Inscription.php)
CREATE TABLE smile.inscription_status (
    status          smallint PRIMARY KEY CHECK (status > 0),
    label           text NOT NULL UNIQUE
);

COMMENT ON TABLE smile.inscription_status IS 'Registration statuses (SMILE status / statuslibelle)';

INSERT INTO smile.inscription_status (status, label) VALUES
    (1, 'Nomination'),
    (2, 'Inscrit'),
    (3, 'Abandon'),
    (4, 'Terminé');

CREATE TABLE smile.inscription (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid            uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    esi             smile.esi,
    given_names     text NOT NULL CHECK (btrim(given_names) <> ''),   -- SMILE: firstname
    family_name     text NOT NULL CHECK (btrim(family_name) <> ''),   -- SMILE: lastname
    birth_date      date CHECK (birth_date >= DATE '1900-01-01'),     -- SMILE: birthdate
    email           smile.email,
    street          text,
    street_number   text,                               -- SMILE: numstreet
    postal_code     text,
    city            text,
    disability      boolean NOT NULL DEFAULT false,     -- SMILE: handicap
    first_mobility  boolean,                            -- SMILE: firstmobilite
    home_etablissement_id bigint NOT NULL REFERENCES smile.etablissement (id),   -- SMILE: etablissement_id
    referent_email  smile.email,                        -- SMILE: mailreferent
    step_id         bigint NOT NULL REFERENCES smile.step (id),
    status          smallint NOT NULL DEFAULT 1 REFERENCES smile.inscription_status (status),
    -- first calendar year of the academic year: 2025 = 2025/2026
    academic_year   smallint NOT NULL CHECK (academic_year BETWEEN 2000 AND 2100),   -- SMILE: year
    arrival_month   smallint CHECK (arrival_month BETWEEN 1 AND 12),   -- SMILE: montharrival
    utilisateur_id  bigint UNIQUE REFERENCES smile.utilisateur (id) ON DELETE SET NULL,   -- SMILE: user_id
    composante_id   bigint REFERENCES smile.composante (id) ON DELETE SET NULL,   -- main faculty
    mobilite_id     bigint REFERENCES smile.mobilite (id),
    -- the sending HEI's id of this mobility when it came over EWP
    -- (OMobilities), unique per sending HEI
    omobility_id    smile.ewp_id,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inscription_omobility_unique UNIQUE (home_etablissement_id, omobility_id)
);

COMMENT ON TABLE smile.inscription IS 'Incoming students'' registrations (EWP nominations)';

CREATE INDEX inscription_step ON smile.inscription (step_id);
CREATE INDEX inscription_home ON smile.inscription (home_etablissement_id);
CREATE INDEX inscription_composante ON smile.inscription (composante_id) WHERE composante_id IS NOT NULL;
CREATE INDEX inscription_email ON smile.inscription (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX inscription_referent ON smile.inscription (lower(referent_email)) WHERE referent_email IS NOT NULL;
CREATE INDEX inscription_esi ON smile.inscription (esi) WHERE esi IS NOT NULL;
CREATE INDEX inscription_year ON smile.inscription (academic_year);

CREATE TRIGGER inscription_modified_at
    BEFORE INSERT OR UPDATE ON smile.inscription
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- Step history: one row per validation or refusal (SMILE stepmessage)
CREATE TABLE smile.stepmessage (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inscription_id  bigint NOT NULL REFERENCES smile.inscription (id) ON DELETE CASCADE,
    step_id         bigint NOT NULL REFERENCES smile.step (id),   -- the step acted upon
    -- SMILE writes type 'denied' on refusals and none on validations
    type            text NOT NULL CHECK (type IN ('validated', 'denied')),
    comment         text NOT NULL DEFAULT '',           -- SMILE: libelle
    is_valid        boolean,                            -- SMILE: currentstatus
    -- who acted; NULL when ewpd did (an EWP exchange) or the user is gone
    validator_id    bigint REFERENCES smile.utilisateur (id) ON DELETE SET NULL,
    showed          boolean NOT NULL DEFAULT false,     -- shown to the student yet
    created_at      timestamptz NOT NULL DEFAULT now()  -- SMILE: date
);

COMMENT ON TABLE smile.stepmessage IS 'Workflow history: validations and refusals of steps';

CREATE INDEX stepmessage_inscription ON smile.stepmessage (inscription_id, created_at);
CREATE INDEX stepmessage_step ON smile.stepmessage (step_id);
CREATE INDEX stepmessage_validator ON smile.stepmessage (validator_id) WHERE validator_id IS NOT NULL;
