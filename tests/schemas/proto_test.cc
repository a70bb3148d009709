#include "schemas/proto/command_service.grpc.pb.h"
#include "schemas/proto/envelopes.pb.h"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(proto, command_result_round_trips_through_protobuf) {
  esflow::v1::CommandResult r;
  r.set_status("accepted");
  r.set_aggregate_id("acc-1");
  r.set_version(6);
  auto* e = r.add_events();
  e->set_event_type("deposited");
  e->set_payload_json(R"({"type":"deposited","amount":50})");
  std::string bytes;
  ASSERT_TRUE(r.SerializeToString(&bytes));
  esflow::v1::CommandResult back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_EQ(back.status(), "accepted");
  EXPECT_EQ(back.version(), 6u);
  ASSERT_EQ(back.events_size(), 1);
  EXPECT_EQ(back.events(0).payload_json(), R"({"type":"deposited","amount":50})");
}

TEST(proto, command_service_declares_submit_command) {
  const auto* service = esflow::v1::CommandService::service_full_name();
  EXPECT_STREQ(service, "esflow.v1.CommandService");
}

}  // namespace
