// The host's event log, newest first, refreshed by the event stream.
import type { HostEvent } from '../api.ts';
import { useApi, useLiveTick } from '../live.ts';
import { PageHeader } from './common.tsx';
import { EventTable } from './VmDetail.tsx';

export function EventsView() {
  const tick = useLiveTick();
  const { data } = useApi<HostEvent[]>('/events?limit=300', [tick]);
  return (
    <section aria-labelledby="events-title">
      <PageHeader title={<span id="events-title">Events</span>} />
      <EventTable events={[...(data ?? [])].reverse()} showVm />
    </section>
  );
}
