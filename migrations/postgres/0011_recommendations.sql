-- What a notice recommends, fixed when it is issued: the allocation then, the new size (NULL
-- where no size settles inside the rule's band), the statistic at that size, and why there is
-- no size (below_smallest_size, no_size_in_band, no_allocation).
ALTER TABLE notices ADD COLUMN allocated DOUBLE PRECISION;
ALTER TABLE notices ADD COLUMN recommended DOUBLE PRECISION;
ALTER TABLE notices ADD COLUMN projected DOUBLE PRECISION;
ALTER TABLE notices ADD COLUMN recommendation_note TEXT;
