-- The staff portal's dashboard of incoming students
-- (gateway/portal/portal_dashboard.c): who a portal user may see, and the
-- one row per incoming student that its counts, lists and exports read.
--
-- An incoming student is a partner's nomination (smile.mobility,
-- is_outgoing = false) with the registration it created
-- (smile.inscription). Who sees whom:
--   * a gestionnaire (portal privilege "students") sees every incoming
--     student, or, when limited to some composantes
--     (smile.utilisateur_composante), the students of those composantes;
--   * a Référent sees the students whose registration names their e-mail
--     as referent_email (compared case-insensitively);
--   * a user given both rights sees both sets (the portal passes the
--     Référent right only for a user without the gestionnaire's, as the
--     students' file does, so that both pages agree).
-- The rule lives here, in one function, so that every page showing
-- students (dashboard, students' files) applies the same one.

-- One name of a multilingual list (smile.valid_names form): the first in
-- the wanted language (or a regional variant of it, 'en-GB' for 'en'),
-- else the first without a language, else the first.
CREATE FUNCTION smile.name_in(names jsonb, lang text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT n.e ->> 'name'
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(names) = 'array' THEN names
                                     ELSE '[]'::jsonb END) WITH ORDINALITY AS n (e, ord)
     ORDER BY CASE WHEN lower(n.e ->> 'lang') = lower(lang) THEN 0
                   WHEN lower(n.e ->> 'lang') LIKE lower(lang) || '-%' THEN 1
                   WHEN NOT n.e ? 'lang' THEN 2
                   ELSE 3 END,
              n.ord
     LIMIT 1
$$;

COMMENT ON FUNCTION smile.name_in(jsonb, text) IS
    'The name to show of a multilingual name list in a language: that language, else no language, else the first';

-- Where the learning agreement of an incoming mobility stands, in one
-- word: none (no learning agreement), gone (the sending HEI no longer
-- serves it), awaiting / approved / rejected (smile.la_incoming), withdrawn
-- (no approved version and no proposal in place). A function rather than a
-- join in the view below, so that the counts, which do not read it, do not
-- pay for it.
CREATE FUNCTION smile.incoming_la_state(p_mobility bigint)
    RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN la.id IS NULL THEN 'none'
                WHEN la.gone_at IS NOT NULL THEN 'gone'
                ELSE coalesce((SELECT li.latest_state FROM smile.la_incoming li WHERE li.id = la.id),
                              'withdrawn') END
      FROM (SELECT 1) one
      LEFT JOIN smile.learning_agreement la ON la.mobility_id = p_mobility
$$;

COMMENT ON FUNCTION smile.incoming_la_state(bigint) IS
    'State of an incoming mobility''s learning agreement: none, gone, awaiting, approved, rejected, withdrawn';

-- Every incoming student, with what the portal shows of them.
CREATE VIEW smile.incoming_student AS
SELECT m.id AS mobility_id,
       i.id AS inscription_id,
       i.given_names,
       i.family_name,
       i.email,
       i.referent_email::text AS referent_email,
       i.academic_year,
       i.status,
       st.label AS status_label,
       i.step_id,
       s.code AS step_code,
       s.label AS step_label,
       s.position AS step_position,
       s.active AS step_active,
       i.composante_id,
       c.code::text AS composante_code,
       c.names AS composante_names,
       i.home_etablissement_id,
       m.sending_hei_id::text AS sending_hei_id,
       e.names AS partner_names,
       m.omobility_id::text AS omobility_id,
       m.status AS nomination_status,
       m.proposal_id AS nomination_proposal_id,
       m.gone_at,
       m.created_at AS nominated_at,
       smile.incoming_la_state(m.id) AS la_state
  FROM smile.mobility m
  JOIN smile.inscription i ON i.id = m.inscription_id
  JOIN smile.inscription_status st ON st.status = i.status
  JOIN smile.step s ON s.id = i.step_id
  JOIN smile.etablissement e ON e.id = i.home_etablissement_id
  LEFT JOIN smile.composante c ON c.id = i.composante_id
 WHERE NOT m.is_outgoing;

COMMENT ON VIEW smile.incoming_student IS
    'Incoming students: a partner''s nomination with its registration, step, status, partner, unit and LA state';

-- The incoming students a portal user may see, filtered. The first four
-- parameters are the user's rights (see above): p_students (privilege
-- "students"), p_composantes (NULL: all; else the ids the user is limited
-- to), p_referent (privilege "referent"), p_email (the user's e-mail).
-- The filters are ANDed; NULL is "any". p_q is matched, case-insensitively,
-- inside "given family" or "family given" (lower(): letters beyond ASCII
-- fold as the database's locale folds them; a C-locale database folds
-- ASCII only).
-- partner_name and composante_name are in p_lang.
CREATE FUNCTION smile.portal_incoming(
    p_students boolean, p_composantes bigint[], p_referent boolean, p_email text,
    p_lang text, p_year smallint, p_partner text, p_composante bigint, p_step bigint,
    p_status smallint, p_q text)
    RETURNS TABLE (mobility_id bigint, inscription_id bigint, given_names text, family_name text,
                   academic_year smallint, status smallint, status_label text,
                   step_id bigint, step_code text, step_label text, step_position integer,
                   step_active boolean, composante_id bigint, composante_name text,
                   sending_hei_id text, partner_name text, omobility_id text,
                   nomination_status text, nominated_at timestamptz, la_state text)
    LANGUAGE sql STABLE
AS $$
    SELECT s.mobility_id, s.inscription_id, s.given_names, s.family_name, s.academic_year,
           s.status, s.status_label, s.step_id, s.step_code, s.step_label, s.step_position,
           s.step_active, s.composante_id,
           coalesce(smile.name_in(s.composante_names, p_lang), s.composante_code),
           s.sending_hei_id, coalesce(smile.name_in(s.partner_names, p_lang), s.sending_hei_id),
           s.omobility_id, s.nomination_status, s.nominated_at, s.la_state
      FROM smile.incoming_student s
     WHERE ((coalesce(p_students, false)
             AND (p_composantes IS NULL OR s.composante_id = ANY (p_composantes)))
            OR (coalesce(p_referent, false) AND p_email IS NOT NULL
                AND lower(s.referent_email) = lower(p_email)))
       AND (p_year IS NULL OR s.academic_year = p_year)
       AND (p_partner IS NULL OR s.sending_hei_id = p_partner)
       AND (p_composante IS NULL OR s.composante_id = p_composante)
       AND (p_step IS NULL OR s.step_id = p_step)
       AND (p_status IS NULL OR s.status = p_status)
       AND (p_q IS NULL OR btrim(p_q) = ''
            OR strpos(lower(s.given_names || ' ' || s.family_name), lower(btrim(p_q))) > 0
            OR strpos(lower(s.family_name || ' ' || s.given_names), lower(btrim(p_q))) > 0)
$$;

COMMENT ON FUNCTION smile.portal_incoming(boolean, bigint[], boolean, text, text, smallint, text,
                                          bigint, bigint, smallint, text) IS
    'Incoming students a portal user may see (gestionnaire, limited to composantes or not; Référent by e-mail), filtered';
