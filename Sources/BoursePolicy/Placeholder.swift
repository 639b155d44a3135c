// BoursePolicy
