import type { MessageBus } from '../ports/message-bus.js';
import type { GatewayCommand, SessionTransport } from '../ports/sessions.js';

/** The bus channel of a gateway. */
export const gatewayChannel = (gateway: string) => `gw:${gateway}`;

/** The session registry's transport in cluster mode: one bus channel per gateway, JSON commands. */
export class BusSessionTransport implements SessionTransport {
  constructor(private readonly bus: MessageBus) {}

  send(gateway: string, command: GatewayCommand): Promise<void> {
    return this.bus.publish(gatewayChannel(gateway), JSON.stringify(command));
  }

  listen(gateway: string, handle: (command: GatewayCommand) => void): Promise<() => Promise<void>> {
    return this.bus.subscribe(gatewayChannel(gateway), (text) => handle(JSON.parse(text) as GatewayCommand));
  }
}
