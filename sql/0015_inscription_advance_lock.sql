-- smile.inscription_advance() locked the registration with
-- SELECT ... FROM inscription JOIN step ... FOR UPDATE OF inscription.
-- When another transaction had just moved the registration to another step
-- (our accepted LA approval and the partner's refetched first version
-- arrive together), PostgreSQL re-checked the locked row against the old
-- step row, the join no longer matched, and the function said "no
-- registration": the fetched learning agreement was refused. The row is
-- now locked alone, and its current step read afterwards.
CREATE OR REPLACE FUNCTION smile.inscription_advance(p_inscription bigint, p_from_step text,
                                                     p_comment text DEFAULT '')
    RETURNS boolean
    LANGUAGE plpgsql
AS $$
DECLARE
    from_pos integer;
    cur_step bigint;
    cur_pos integer;
    target bigint;
    target_pos integer;
BEGIN
    SELECT position INTO from_pos FROM smile.step WHERE code = p_from_step;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no workflow step "%"', p_from_step
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT step_id INTO cur_step FROM smile.inscription WHERE id = p_inscription FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no registration %', p_inscription
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT position INTO cur_pos FROM smile.step WHERE id = cur_step;
    SELECT id, position INTO target, target_pos
      FROM smile.step
     WHERE active AND position > from_pos
     ORDER BY position
     LIMIT 1;
    IF target IS NULL OR cur_pos >= target_pos THEN
        RETURN false;                   -- no later active step, or already there
    END IF;
    UPDATE smile.inscription SET step_id = target WHERE id = p_inscription;
    INSERT INTO smile.stepmessage (inscription_id, step_id, type, comment, is_valid, validator_id)
    SELECT p_inscription, s.id, 'validated', coalesce(p_comment, ''), true, NULL
      FROM smile.step s WHERE s.code = p_from_step;
    RETURN true;
END
$$;
