// BourseWorkload
