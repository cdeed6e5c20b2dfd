-- Courses, keyed by (academicCareer, termCode, courseId, sessionCode); courseId is a number.

SELECT lake.install_domain(
    'course',
    ARRAY['academic_career', 'term_code', 'course_id', 'session_code'],
    ARRAY['text', 'text', 'bigint', 'text'],
    ARRAY['academicCareer', 'termCode', 'courseId', 'sessionCode']);

-- Its walker, for the services it has so far (none); each change of its filters compiles it anew.
SELECT lake.compile_walker('course');
