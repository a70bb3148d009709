// The names tenant.route builds and reads: a stream subject's tenant (hostile
// subjects give none, so the message stays here and tenant.gate answers it),
// the forward subject and the placement bucket of a pipeline.
#include "stages/nats/tenant_router.h"

#include <gtest/gtest.h>

namespace esflow::stages {
namespace {

TEST(tenant_route_names, the_tenant_of_each_stream_subject) {
  EXPECT_EQ(tenant_of_subject("tenant.acme.aggregate.Transfer.tr-1"), "acme");
  EXPECT_EQ(tenant_of_subject("tenant.acme.command_result.Transfer"), "acme");
  EXPECT_EQ(tenant_of_subject("tenant.globex.reminder.Transfer"), "globex");
  EXPECT_EQ(tenant_of_subject("tenant.globex.effect_result.notify"), "globex");
  // A prefixed stream subject, and the single-tenant `_`.
  EXPECT_EQ(tenant_of_subject("jobs.tenant.acme.aggregate.A.1"), "acme");
  EXPECT_EQ(tenant_of_subject("tenant._.aggregate.A.1"), "");
}

TEST(tenant_route_names, subjects_without_a_valid_tenant_give_none) {
  for (const char* s : {"", "tenant", "tenant.", "aggregate.A.1", "tenantx.acme.aggregate.A.1",
                        "tenant..aggregate.A.1", "tenant.a b.aggregate.A.1"})
    EXPECT_FALSE(tenant_of_subject(s).has_value()) << "'" << s << "'";
}

TEST(tenant_route_names, forward_subject_and_bucket_are_token_safe) {
  EXPECT_EQ(forward_subject("runner", "runner-a"), "_ESFLOW.forward.runner.runner-a");
  EXPECT_EQ(forward_subject("my.pipe*", "n1"), "_ESFLOW.forward.my_pipe_.n1");
  EXPECT_EQ(pipeline_placement_bucket("runner"), "RUNNER_PLACEMENT");
  EXPECT_EQ(pipeline_placement_bucket("runner-effect"), "RUNNER-EFFECT_PLACEMENT");
  EXPECT_EQ(pipeline_placement_bucket("a.b>"), "A_B__PLACEMENT");
}

}  // namespace
}  // namespace esflow::stages
